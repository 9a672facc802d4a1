"""Training computes identify's threshold for the snapshot's size; identify and listing use it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from facegate.config import Settings
from facegate.service.common import Tenant
from facegate.service.container import Services
from facegate.service.decision import ThresholdPlan
from facegate.store.db import Database
from facegate.store.models import Collection

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine

PEOPLE = [(r, g, 0) for r in (40, 104, 168, 232) for g in (40, 104, 168, 232)]


@pytest.fixture
def tenant(services: Services) -> Tenant:
    return services.keys.authenticate(services.keys.create("t").secret)


def _collection(
    services: Services, tenant: Tenant, faces: Faces, people: int, *, unknowns: bool = False
) -> str:
    collection_id = services.collections.create(tenant, "c", unknowns=unknowns)
    for colour in PEOPLE[:people]:
        services.enrollments.create(
            tenant, {"img0": faces.png(colour)}, name=str(colour), collection_id=collection_id
        )
    services.trainer.train(collection_id)
    return collection_id


def _plan(services: Services, tenant: Tenant, collection_id: str) -> ThresholdPlan:
    plan = next(v.plan for v in services.collections.list(tenant) if v.id == collection_id)
    assert plan is not None
    return plan


def test_training_stores_the_size_and_a_threshold_that_rises_with_it(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    small = _plan(services, tenant, _collection(services, tenant, faces, 2))
    large = _plan(services, tenant, _collection(services, tenant, faces, 16))
    assert (small.people, small.embeddings, large.people, large.embeddings) == (2, 2, 16, 16)
    assert small.threshold < large.threshold
    assert small.target_fpir == large.target_fpir == services.settings.identify_target_fpir
    with services.database.reading() as session:
        rows = session.query(Collection).order_by(Collection.trained_people).all()
        assert [r.identify_threshold for r in rows] == [small.threshold, large.threshold]


def test_identify_applies_the_stored_threshold_and_the_size_aware_unknown_probability(
    services: Services, tenant: Tenant, faces: Faces, engine: FakeEngine
) -> None:
    collection_id = _collection(services, tenant, faces, 1)
    plan = _plan(services, tenant, collection_id)
    # The one enrollment's colour with blue 250: 0.78 from it, within the 1 % threshold.
    result = services.recognition.identify(tenant, collection_id, faces.png((40, 40, 250)))[0]
    assert result.identified is not None and result.score >= plan.threshold
    # A gallery of one embedding answers as 1:1 does.
    assert result.unknown_probability == pytest.approx(1 - result.score, rel=1e-6)
    with services.database.transaction() as session:
        session.execute(update(Collection).values(identify_threshold=result.score + 1e-6))
    refused = services.recognition.identify(tenant, collection_id, faces.png((40, 40, 250)))[0]
    assert refused.identified is None and refused.score == pytest.approx(result.score)


def test_a_snapshot_without_a_stored_threshold_gets_the_rule_for_its_size(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    collection_id = _collection(services, tenant, faces, 4)
    trained = _plan(services, tenant, collection_id)
    with services.database.transaction() as session:  # as migration 0003 leaves old snapshots
        session.execute(
            update(Collection).values(identify_threshold=None, identify_target_fpir=None)
        )
    assert _plan(services, tenant, collection_id) == trained


def test_a_changed_target_applies_without_retraining(
    services: Services, tenant: Tenant, faces: Faces, engine: FakeEngine, settings: Settings
) -> None:
    collection_id = _collection(services, tenant, faces, 4)
    before = _plan(services, tenant, collection_id)
    looser = settings.model_copy(update={"identify_target_fpir": 0.2})
    rebuilt = Services.build(looser, engine, services.database)
    after = _plan(rebuilt, tenant, collection_id)
    assert after.target_fpir == 0.2 and after.threshold < before.threshold
    assert after.embeddings == before.embeddings


def test_unknowns_collections_get_the_stricter_target(
    services: Services, tenant: Tenant, faces: Faces
) -> None:
    plain = _plan(services, tenant, _collection(services, tenant, faces, 4))
    strict = _plan(services, tenant, _collection(services, tenant, faces, 4, unknowns=True))
    assert strict.target_fpir == services.settings.unknowns_target_fpir
    assert strict.threshold > plain.threshold


def test_training_warns_in_the_log_and_the_listing_when_tpir_would_be_low(
    settings: Settings, engine: FakeEngine, faces: Faces, caplog: pytest.LogCaptureFixture
) -> None:
    picky = settings.model_copy(update={"identify_warn_tpir": 0.9999})
    services = Services.build(picky, engine, Database.from_settings(picky))
    tenant = services.keys.authenticate(services.keys.create("t").secret)
    with caplog.at_level(logging.WARNING, logger="facegate.training"):
        plan = _plan(services, tenant, _collection(services, tenant, faces, 3))
    assert plan.warning is not None and plan.expected_tpir is not None
    assert f"{plan.expected_tpir:.1%}" in plan.warning
    assert any(plan.warning in r.getMessage() for r in caplog.records)
    services.stop()
