"""The store on a real PostgreSQL (tests/postgres.py): the shipped migrations build the models'
schema, old rows upgrade as on SQLite (tests/unit/test_store_schema.py), several processes
migrate one database at once, and what processes share through it holds: the rate limit counts
across them and a training job is claimed by exactly one.

Each "process" here is a :class:`Database` of its own (its own engine and connection pool) on
the test's own database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from facegate.config import Settings
from facegate.engine.zoo import DLIB_RECIPE
from facegate.errors import RateLimited
from facegate.index.factory import make_gallery
from facegate.service.common import utcnow
from facegate.service.decision import OpenSetPlanner
from facegate.service.keys import KeyStore
from facegate.service.ratelimit import RateLimiter
from facegate.service.training import Trainer
from facegate.store.db import Database
from facegate.store.migrate import alembic_config
from facegate.store.models import Base, Collection
from facegate.store.vectors import to_blob
from tests.postgres import PostgresServer

pytestmark = pytest.mark.integration

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
STAMP = "'2026-01-01 00:00:00'"
KEY_ROW: tuple[str, dict[str, Any]] = (
    f"INSERT INTO api_keys (id, name, secret_sha256, created) VALUES ('k', 'o', 'x', {STAMP})",
    {},
)


@pytest.fixture
def databases(postgres_url: str) -> Iterator[Callable[[], Database]]:
    """Makes Database objects on the test's PostgreSQL database; all disposed after. A statement
    waits at most 30 s for a lock, so that a race between them fails instead of hanging."""
    made: list[Database] = []
    url = make_url(postgres_url).update_query_dict({"options": "-c lock_timeout=30s"})

    def make() -> Database:
        made.append(Database(url.render_as_string(hide_password=False)))
        return made[-1]

    yield make
    for database in made:
        database.dispose()


def _version(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_the_server_offers_pgvector(postgres_server: PostgresServer) -> None:
    """The vector column the store is getting needs the extension: pgserver ships it."""
    assert postgres_server.vector_available()


def test_migrations_match_the_models(databases: Callable[[], Database]) -> None:
    database = databases()
    database.migrate()
    assert database.engine.dialect.name == "postgresql"
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert _version(database) == HEAD
    database.ping()


def test_migrating_twice_is_harmless(databases: Callable[[], Database]) -> None:
    database = databases()
    database.migrate()
    database.migrate()
    assert _version(database) == HEAD


def test_processes_starting_together_migrate_once(databases: Callable[[], Database]) -> None:
    """Four processes migrate an empty database at once: the advisory lock lets one build the
    schema while the others wait, then find nothing left to do (no duplicate-table error)."""
    racers = [databases() for _ in range(4)]
    barrier = threading.Barrier(len(racers))

    def migrate(database: Database) -> str | None:
        barrier.wait()
        database.migrate()
        return _version(database)

    with ThreadPoolExecutor(len(racers)) as pool:
        versions = list(pool.map(migrate, racers))
    assert versions == [HEAD] * len(racers)


def _upgrade(database: Database, revision: str, *statements: tuple[str, dict[str, Any]]) -> None:
    """Migrate to ``revision`` and write rows there, as that release would have."""
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        for sql, params in statements:
            connection.execute(text(sql), params)


def test_rows_of_the_previous_release_are_tagged_as_dlib(
    databases: Callable[[], Database],
) -> None:
    """A database made by facegate 0.1 (schema 0001) upgrades with its embeddings tagged."""
    database = databases()
    _upgrade(
        database,
        "0001",
        KEY_ROW,
        (
            "INSERT INTO enrollments (id, owner_id, name, created, updated) "
            f"VALUES ('e', 'k', 'Ada', {STAMP}, {STAMP})",
            {},
        ),
        (
            "INSERT INTO embeddings (enrollment_id, position, vector, created) "
            f"VALUES ('e', 0, :vector, {STAMP})",
            {"vector": to_blob(np.ones(128, np.float32))},
        ),
    )
    database.migrate()
    assert _version(database) == HEAD
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT recipe, tta FROM embeddings")).one()
    assert tuple(row) == (DLIB_RECIPE.key, None)


def test_snapshots_trained_before_0003_get_their_size(databases: Callable[[], Database]) -> None:
    """0003's UPDATE with correlated subqueries (plain SQL, written for both backends) counts
    each old snapshot on PostgreSQL too; the rest of the migrations then run over those rows."""
    database = databases()
    rows: list[tuple[str, dict[str, Any]]] = [KEY_ROW]
    for enrollment, images in (("e1", 2), ("e2", 1)):
        rows.append(
            (
                "INSERT INTO enrollments (id, owner_id, name, created, updated) "
                f"VALUES ('{enrollment}', 'k', NULL, {STAMP}, {STAMP})",
                {},
            )
        )
        for position in range(images):
            rows.append(
                (
                    "INSERT INTO embeddings (enrollment_id, position, vector, recipe, created) "
                    f"VALUES ('{enrollment}', {position}, :v, 'r', {STAMP})",
                    {"v": to_blob(np.ones(128, np.float32))},
                )
            )
    for name, trained in (("c1", 0), ("c2", None)):
        rows.append(
            (
                "INSERT INTO collections (id, owner_id, name, unknowns, created, updated, "
                "revision, trained_revision, training, snapshot_version) VALUES "
                f"('{name}', 'k', '{name}', false, {STAMP}, {STAMP}, 0, :t, false, 1)",
                {"t": trained},
            )
        )
    # Schema 0002's snapshot table, as that release wrote it.
    rows.append(("INSERT INTO trained_embeddings SELECT 'c1', id FROM embeddings", {}))
    _upgrade(database, "0002", *rows)
    _upgrade(database, "0003")
    with database.engine.connect() as connection:
        counted = connection.execute(
            text(
                "SELECT id, trained_people, trained_embeddings, identify_threshold "
                "FROM collections ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in counted] == [("c1", 2, 3, None), ("c2", None, None, None)]
    database.migrate()
    assert _version(database) == HEAD


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # an epoch minute's first second: no window boundary

    def __call__(self) -> float:
        return self.now


def test_two_processes_share_one_rate_limit(databases: Callable[[], Database]) -> None:
    """``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in PostgreSQL's dialect, from two
    engines at once: exactly the limit is admitted between them, none twice."""
    first, second = databases(), databases()
    first.migrate()
    clock = Clock()
    limiters = [RateLimiter(db, per_minute=10, clock=clock) for db in (first, second)]
    barrier = threading.Barrier(24)

    def request(index: int) -> bool:
        barrier.wait()
        try:
            limiters[index % 2].take("shared")
        except RateLimited as refused:
            assert refused.retry_after_s is not None and 1 <= refused.retry_after_s <= 60
            return False
        return True

    with ThreadPoolExecutor(24) as pool:
        outcomes = list(pool.map(request, range(24)))
    assert outcomes.count(True) == 10
    with first.engine.connect() as connection:
        counted = connection.execute(text("SELECT key_id, requests FROM rate_limits")).all()
    assert [tuple(r) for r in counted] == [("shared", 24)]

    # The next window starts from zero, and the one before the previous is pruned.
    clock.now += 120
    limiters[1].take("shared")
    with second.engine.connect() as connection:
        windows = connection.execute(text("SELECT window_start, requests FROM rate_limits")).all()
    assert [tuple(r) for r in windows] == [(1_800_000_120, 1)]


def _trainer(database: Database, owner: str) -> Trainer:
    # Claiming and sweeping never plan a threshold; a job that runs plans with no tail model.
    engine: Any = SimpleNamespace(impostor_tail=None, recipe=DLIB_RECIPE, tta="none")
    settings = Settings(training_lease_s=30)
    return Trainer(
        database,
        OpenSetPlanner(settings, engine),
        DLIB_RECIPE,
        make_gallery(settings, database),
        settings,
        owner=owner,
    )


def _pending_jobs(database: Database, count: int) -> list[str]:
    """Collections marked ``training`` with no owner: jobs any process may claim."""
    database.migrate()
    key = KeyStore(database).create("jobs").key_id
    now = utcnow()
    ids = [f"c{i}" for i in range(count)]
    with database.transaction() as session:
        for collection_id in ids:
            session.add(
                Collection(
                    id=collection_id,
                    owner_id=key,
                    name=collection_id,
                    created=now,
                    updated=now,
                    training=True,
                )
            )
    return ids


def test_a_training_job_is_claimed_by_exactly_one_process(
    databases: Callable[[], Database],
) -> None:
    first, second = databases(), databases()
    jobs = _pending_jobs(first, 20)
    trainers = [_trainer(first, "a"), _trainer(second, "b")]
    try:
        for job in jobs:
            barrier = threading.Barrier(2)

            def claim(
                trainer: Trainer, job: str = job, barrier: threading.Barrier = barrier
            ) -> bool:
                barrier.wait()
                return trainer.claim(job)

            with ThreadPoolExecutor(2) as pool:
                won = list(pool.map(claim, trainers))
            assert won.count(True) == 1, (job, won)
        with first.reading() as session:
            owners = session.execute(select(Collection.training_owner)).scalars().all()
        assert set(owners) <= {"a", "b"} and len(owners) == len(jobs)
    finally:
        for trainer in trainers:
            trainer.shutdown()


def test_a_sweep_passes_over_rows_another_process_has_locked(
    databases: Callable[[], Database],
) -> None:
    """FOR UPDATE SKIP LOCKED: a job row locked by another transaction is skipped at once, not
    waited on; released, the next sweep claims it and runs the job to ``ready``."""
    holder, sweeper = databases(), databases()
    [job] = _pending_jobs(holder, 1)
    trainer = _trainer(sweeper, "b")
    try:
        with holder.engine.connect() as connection, connection.begin():
            connection.execute(
                text("SELECT id FROM collections WHERE id = :id FOR UPDATE"), {"id": job}
            )
            started = time.monotonic()
            assert trainer.sweep() == 0
            assert time.monotonic() - started < 5, "the sweep waited on the locked row"
        assert trainer.sweep() == 1
        deadline = time.monotonic() + 30
        while True:
            with holder.reading() as session:
                row = session.get_one(Collection, job)
                if not row.training:
                    break
            assert time.monotonic() < deadline, "the claimed job never finished"
            time.sleep(0.05)
        assert (row.training_owner, row.training_lease_until) == (None, None)
        assert row.trained_revision == row.revision and row.snapshot_version == 1
    finally:
        trainer.shutdown()


def _backend_pid(connection: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_a_read_connection_holds_no_transaction_between_uses(
    databases: Callable[[], Database],
) -> None:
    """Neither rolled back nor pinged when pooled (store/db.py `read_raw`): it must be in
    autocommit, or every pooled connection would sit idle in a transaction, holding back
    VACUUM."""
    database = databases()
    pid = database.read_raw(_backend_pid)
    with database.engine.connect() as connection:
        state = connection.execute(
            text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar_one()
    assert state == "idle"


def test_a_read_connection_the_server_dropped_is_replaced(
    databases: Callable[[], Database],
) -> None:
    """No ping on checkout: a connection the server ended (a restart, an idle timeout) fails
    on use, and the read runs again on a new one instead of failing the request."""
    database = databases()
    dropped = database.read_raw(_backend_pid)
    with database.engine.connect() as connection:
        ended = connection.execute(
            text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped}
        ).scalar_one()
    assert ended
    assert database.read_raw(_backend_pid) != dropped
