"""Training jobs under a lease: claim, heartbeat, expiry and takeover by another process.

Each ``Trainer`` here stands for one process (its own owner id) on the same database file, so
what two processes would do to each other's jobs is played out on real SQLite rows.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from facegate.config import Settings
from facegate.index.factory import make_gallery
from facegate.priority import BACKGROUND_NICENESS, lower_priority
from facegate.service.common import Tenant, utcnow
from facegate.service.container import Services
from facegate.service.decision import OpenSetPlanner
from facegate.service.training import (
    Trainer,
    TrainingStatus,
    process_id,
    sweep_candidates,
)
from facegate.store.models import Collection

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine


@pytest.fixture
def tenant(services: Services) -> Tenant:
    return services.keys.authenticate(services.keys.create("t").secret)


@pytest.fixture
def make_trainer(services: Services, settings: Settings, engine: FakeEngine) -> Iterator[Any]:
    made: list[Trainer] = []

    def make(owner: str, **overrides: Any) -> Trainer:
        own = settings.model_copy(update=overrides)
        trainer = Trainer(
            services.database,
            OpenSetPlanner(own, engine),
            engine.recipe,
            make_gallery(own, services.database),
            own,
            owner=owner,
        )
        made.append(trainer)
        return trainer

    yield make
    for trainer in made:
        trainer.shutdown()


def _row(services: Services, collection_id: str) -> Collection:
    with services.database.reading() as session:
        return session.get_one(Collection, collection_id)


def _mark(services: Services, collection_id: str, **values: Any) -> None:
    """Set job columns directly: a dead process's state, or a lease moved into the past."""
    with services.database.transaction() as session:
        collection = session.get_one(Collection, collection_id)
        for name, value in values.items():
            setattr(collection, name, value)


def _collection(services: Services, tenant: Tenant, faces: Faces) -> str:
    collection = services.collections.create(tenant, "c")
    services.enrollments.create(tenant, {"img0": faces.png(faces.alice)}, collection_id=collection)
    return collection


def _status(services: Services, tenant: Tenant, collection_id: str) -> TrainingStatus:
    return next(v.status for v in services.collections.list(tenant) if v.id == collection_id)


def _past() -> datetime:
    return utcnow() - timedelta(seconds=1)


def test_owner_ids_tell_processes_apart() -> None:
    first, second = process_id(), process_id()
    assert first != second  # the same pid again (a restart) is still another owner
    assert first.rsplit(":", 2)[1] == second.rsplit(":", 2)[1]
    assert len(first) <= 128


def test_request_claims_the_job_and_training_clears_the_lease(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    a = make_trainer("a", training_test_delay_s=60.0, training_lease_s=15.0)
    before = utcnow()
    a.request(tenant, collection)
    row = _row(services, collection)
    assert (row.training, row.training_owner) == (True, "a")
    assert row.training_lease_until is not None
    assert before + timedelta(seconds=14) <= row.training_lease_until
    assert row.training_lease_until <= utcnow() + timedelta(seconds=15)
    assert a.held() == {collection}
    a.shutdown()  # cuts the test delay short; the job still runs to the end
    row = _row(services, collection)
    assert (row.training, row.training_owner, row.training_lease_until) == (False, None, None)
    assert _status(services, tenant, collection) is TrainingStatus.READY
    assert row.trained_people == 1 and row.identify_threshold is not None  # the open-set plan
    assert a.held() == set()


def test_a_live_lease_is_not_taken_and_an_expired_one_is(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    a, b = make_trainer("a"), make_trainer("b")
    _mark(services, collection, training=True)
    assert a.claim(collection)
    assert a.claim(collection)  # its own lease: claiming again renews it
    assert not b.claim(collection)
    assert b.sweep() == 0
    assert _row(services, collection).training_owner == "a"

    _mark(services, collection, training_lease_until=_past())  # a stopped renewing
    assert b.claim(collection)
    assert _row(services, collection).training_owner == "b"
    assert not a.claim(collection)  # the old owner, back, does not take it back


def test_no_job_no_claim(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    assert not make_trainer("a").claim(collection)  # not marked training: nothing to run
    assert not make_trainer("a").claim("no-such-collection")


def test_the_heartbeat_renews_only_leases_still_held(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    a = make_trainer("a", training_test_delay_s=60.0, training_lease_s=15.0)
    a.request(tenant, collection)
    _mark(services, collection, training_lease_until=utcnow() + timedelta(seconds=1))
    assert a.renew() == 1
    lease = _row(services, collection).training_lease_until
    assert lease is not None and lease > utcnow() + timedelta(seconds=14)

    # Taken over while a was stalled: a's heartbeat must not steal it back.
    _mark(services, collection, training_owner="b")
    assert a.renew() == 0
    assert _row(services, collection).training_owner == "b"


def test_a_sweep_takes_over_a_dead_owners_job_and_finishes_it(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    dead = _collection(services, tenant, faces)
    alive = services.collections.create(tenant, "alive")
    never_claimed = services.collections.create(tenant, "old")
    lease = utcnow() + timedelta(seconds=60)
    _mark(services, dead, training=True, training_owner="dead", training_lease_until=_past())
    _mark(services, alive, training=True, training_owner="alive", training_lease_until=lease)
    _mark(services, never_claimed, training=True)  # as left by a version without leases
    b = make_trainer("b")
    assert b.sweep() == 2
    b.shutdown()  # waits for the queued jobs
    assert _status(services, tenant, dead) is TrainingStatus.READY
    assert _status(services, tenant, never_claimed) is TrainingStatus.READY
    assert _row(services, dead).trained_people == 1
    assert _status(services, tenant, alive) is TrainingStatus.TRAINING
    assert _row(services, alive).training_owner == "alive"


def test_the_background_sweeper_finishes_an_abandoned_job(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    soon = utcnow() + timedelta(seconds=0.3)
    _mark(services, collection, training=True, training_owner="dead", training_lease_until=soon)
    b = make_trainer("b", training_sweep_s=0.05, training_heartbeat_s=0.05)
    b.start()
    deadline = time.monotonic() + 10
    while _status(services, tenant, collection) is not TrainingStatus.READY:
        assert time.monotonic() < deadline, "the sweeper never took the job over"
        time.sleep(0.02)
    assert _row(services, collection).training_owner is None


def test_a_disabled_sweeper_leaves_others_jobs_alone(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    _mark(services, collection, training=True, training_owner="dead", training_lease_until=_past())
    ran = threading.Event()
    b = make_trainer("b", training_sweep_s=0.0, training_heartbeat_s=0.02)
    original = b.renew

    def renew() -> int:
        ran.set()
        return original()

    b.renew = renew  # type: ignore[method-assign]
    b.start()
    assert ran.wait(5)  # the heartbeat loop ran ...
    b.shutdown()
    assert _row(services, collection).training_owner == "dead"  # ... and swept nothing


def test_exactly_one_of_many_concurrent_claimers_wins(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    _mark(services, collection, training=True, training_owner="dead", training_lease_until=_past())
    trainers = [make_trainer(f"p{i}") for i in range(8)]
    barrier = threading.Barrier(len(trainers))
    wins: list[str] = []

    def claim(trainer: Trainer) -> None:
        barrier.wait()
        if trainer.claim(collection):
            wins.append(trainer.owner)

    threads = [threading.Thread(target=claim, args=(t,)) for t in trainers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert _row(services, collection).training_owner == wins[0]


def test_a_failed_job_releases_its_lease(
    services: Services, tenant: Tenant, faces: Faces, make_trainer: Any
) -> None:
    collection = _collection(services, tenant, faces)
    a = make_trainer("a")

    def broken(_collection_id: str) -> bool:
        raise RuntimeError("boom")

    a.train = broken  # type: ignore[method-assign]
    a.request(tenant, collection)
    a.shutdown()
    row = _row(services, collection)
    assert (row.training, row.training_owner, row.training_lease_until) == (False, None, None)


def test_the_sweep_skips_rows_other_sweepers_hold_on_postgresql() -> None:
    query = sweep_candidates(utcnow())
    assert "FOR UPDATE SKIP LOCKED" in str(query.compile(dialect=postgresql.dialect()))
    # SQLite has no row locks (its writers run one at a time): the clause is left out.
    assert "FOR UPDATE" not in str(query.compile(dialect=sqlite.dialect()))


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_training_runs_below_the_request_threads() -> None:
    """The training thread lowers its own priority (an index update at 10^6 is seconds of CPU
    on the cores that serve requests); the rest of the process keeps its own."""
    seen: dict[str, int] = {}

    def worker() -> None:
        before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        lower_priority()
        seen["before"] = before
        seen["after"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["after"] == min(19, seen["before"] + BACKGROUND_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == seen["before"]
