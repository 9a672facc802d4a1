"""Enrollment writes, training snapshots and their states, deletion for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from sqlalchemy import func, select

from facegate.api.app import create_app
from facegate.config import Settings
from facegate.service.common import Tenant
from facegate.service.container import Services
from facegate.service.training import TrainingStatus
from facegate.store.models import Collection, CollectionMember, Embedding
from facegate.store.snapshot import SnapshotBounds
from facegate.store.vectors import from_blob

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine


@pytest.fixture
def tenant(services: Services) -> Tenant:
    created = services.keys.create("t")
    return services.keys.authenticate(created.secret)


def _count(services: Services, model: type[object]) -> int:
    with services.database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _snapshot_size(services: Services, collection_id: str) -> int:
    """Embeddings in the collection's trained snapshot, as identify would search it."""
    with services.database.reading() as session:
        collection = session.get_one(Collection, collection_id)
        assert collection.trained_revision is not None
        bounds = SnapshotBounds(
            collection_id,
            collection.trained_revision,
            collection.trained_watermark or 0,
            services.engine.recipe.key,
        )
        return int(session.scalar(bounds.select(func.count())) or 0)


def _status(services: Services, tenant: Tenant, collection_id: str) -> TrainingStatus:
    return next(v.status for v in services.collections.list(tenant) if v.id == collection_id)


def test_one_float32_row_per_image_and_no_image_kept(
    services: Services, tenant: Tenant, faces: Faces, engine: FakeEngine
) -> None:
    enrollment = services.enrollments.create(
        tenant, {"img0": faces.png(faces.alice), "img1": faces.png(faces.bob)}, name="x"
    )
    with services.database.reading() as session:
        rows = session.scalars(
            select(Embedding)
            .where(Embedding.enrollment_id == enrollment)
            .order_by(Embedding.position)
        ).all()
    assert [r.position for r in rows] == [0, 1]
    assert all(len(r.vector) == 128 * 4 and r.image is None for r in rows)
    decoded = engine.embed(
        engine.decode(faces.png(faces.alice)), engine.detect(engine.decode(faces.png(faces.alice)))
    )[0]
    assert np.allclose(from_blob(rows[0].vector), decoded)


def test_images_are_kept_only_when_configured(
    settings: Settings, engine: FakeEngine, faces: Faces
) -> None:
    app = create_app(settings.model_copy(update={"store_images": True}), engine)
    services: Services = app.state.services
    tenant = services.keys.authenticate(services.keys.create("t").secret)
    image = faces.png(faces.alice)
    services.enrollments.create(tenant, {"img0": image})
    with services.database.reading() as session:
        assert session.scalars(select(Embedding.image)).one() == image


def test_snapshot_states_follow_changes(services: Services, tenant: Tenant, faces: Faces) -> None:
    collection = services.collections.create(tenant, "c")
    assert _status(services, tenant, collection) is TrainingStatus.UNTRAINED
    alice = services.enrollments.create(
        tenant, {"img0": faces.png(faces.alice)}, collection_id=collection
    )
    assert services.trainer.train(collection)
    assert _status(services, tenant, collection) is TrainingStatus.READY
    assert _snapshot_size(services, collection) == 1

    services.enrollments.add_images(tenant, alice, {"img0": faces.png(faces.alice)})
    bob = services.enrollments.create(tenant, {"img0": faces.png(faces.bob)})
    services.collections.add_enrollment(tenant, collection, bob)
    services.trainer.shutdown()  # add_enrollment queued a job: wait for it
    assert _snapshot_size(services, collection) == 3
    assert _status(services, tenant, collection) is TrainingStatus.READY


def test_a_snapshot_holds_only_what_was_there_when_it_was_taken(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    collection = services.collections.create(tenant, "c")
    alice = services.enrollments.create(
        tenant, {"img0": faces.png(faces.alice)}, collection_id=collection
    )
    assert services.trainer.train(collection)
    services.enrollments.add_images(tenant, alice, {"img0": faces.png(faces.alice)})
    services.enrollments.create(tenant, {"img0": faces.png(faces.bob)}, collection_id=collection)
    assert _status(services, tenant, collection) is TrainingStatus.STALE
    # A new image of a member and a new member: neither is in the snapshot until retrained.
    assert _snapshot_size(services, collection) == 1
    services.trainer.train(collection)
    assert _snapshot_size(services, collection) == 3
    assert _status(services, tenant, collection) is TrainingStatus.READY


def test_request_marks_training_until_the_job_ran(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    collection = services.collections.create(tenant, "c")
    with services.database.transaction() as session:
        session.get_one(Collection, collection).training = True
    assert _status(services, tenant, collection) is TrainingStatus.TRAINING
    assert services.trainer.resume_interrupted() == 1
    services.trainer.shutdown()  # waits for the queued job
    assert _status(services, tenant, collection) is TrainingStatus.READY


def test_deleting_an_enrollment_removes_every_trace(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    collection = services.collections.create(tenant, "c")
    alice = services.enrollments.create(
        tenant,
        {"img0": faces.png(faces.alice), "img1": faces.png(faces.alice)},
        collection_id=collection,
    )
    services.enrollments.create(tenant, {"img0": faces.png(faces.bob)}, collection_id=collection)
    services.trainer.train(collection)
    before = services.recognition.identify(tenant, collection, faces.png(faces.alice), top_k=2)
    assert alice in {c.enrollment_id for c in before[0].candidates}  # the snapshot is in memory
    with services.database.reading() as session:
        version_before = session.get_one(Collection, collection).snapshot_version
    services.enrollments.delete(tenant, alice)
    assert _count(services, Embedding) == 1
    assert _snapshot_size(services, collection) == 1
    assert _count(services, CollectionMember) == 1
    # Not read again (the version moves with training only), yet never answered again.
    with services.database.reading() as session:
        assert session.get_one(Collection, collection).snapshot_version == version_before
    after = services.recognition.identify(tenant, collection, faces.png(faces.alice), top_k=2)
    assert alice not in {c.enrollment_id for c in after[0].candidates}
    assert [c.enrollment_id for c in after[0].candidates] != []
    assert _status(services, tenant, collection) is TrainingStatus.STALE


def test_deleting_a_collection_keeps_enrollments(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    collection = services.collections.create(tenant, "c")
    services.enrollments.create(tenant, {"img0": faces.png(faces.alice)}, collection_id=collection)
    services.trainer.train(collection)
    services.collections.delete(tenant, collection)
    assert (
        _count(services, Collection),
        _count(services, CollectionMember),
        _count(services, Embedding),
    ) == (0, 0, 1)
    assert services.trainer.train(collection) is False


def test_adding_a_member_twice_is_idempotent(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    collection = services.collections.create(tenant, "c")
    alice = services.enrollments.create(tenant, {"img0": faces.png(faces.alice)})
    for _ in range(2):
        services.collections.add_enrollment(tenant, collection, alice)
    services.trainer.shutdown()
    assert [v.enrollments for v in services.collections.list(tenant)] == [[alice]]
    assert _status(services, tenant, collection) is TrainingStatus.READY
