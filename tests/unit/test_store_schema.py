"""The shipped migrations build exactly the models' schema, with SQLite's pragmas in force."""

from __future__ import annotations

import contextlib
import datetime
import threading
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, inspect, select, text

from facegate.config import Settings
from facegate.engine.zoo import DLIB_RECIPE
from facegate.store.db import Database
from facegate.store.migrate import alembic_config
from facegate.store.models import Base, Collection, Embedding
from facegate.store.snapshot import SnapshotBounds
from facegate.store.vectors import from_blob, stack_blobs, to_blob


def test_migrations_match_the_models(tmp_path: Path) -> None:
    database = Database.from_settings(Settings(data_dir=tmp_path))
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    database = Database.from_settings(Settings(data_dir=tmp_path / "nested" / "dir"))
    database.migrate()
    with database.engine.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0009"
        )


def test_rows_of_the_previous_release_are_tagged_as_dlib(tmp_path: Path) -> None:
    """A database made by facegate 0.1 (schema 0001) upgrades with its embeddings tagged."""
    settings = Settings(data_dir=tmp_path)
    database = Database.from_settings(settings, migrate=False)
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO api_keys (id, name, secret_sha256, created) "
                "VALUES ('k', 'old', 'x', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO enrollments (id, owner_id, name, created, updated) "
                "VALUES ('e', 'k', 'Ada', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO embeddings (enrollment_id, position, vector, created) "
                "VALUES ('e', 0, :vector, '2026-01-01 00:00:00')"
            ),
            {"vector": to_blob(np.ones(128, np.float32))},
        )
    database.migrate()
    with database.engine.connect() as connection:
        row = connection.execute(text("SELECT recipe, tta FROM embeddings")).one()
    assert tuple(row) == (DLIB_RECIPE.key, None)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    database = Database.from_settings(Settings(data_dir=tmp_path))
    with database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.ping()


def test_vectors_round_trip_as_little_endian_float32() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(4, 128)).astype(np.float32)
    blobs = [to_blob(v) for v in vectors]
    assert all(len(b) == 512 for b in blobs)
    assert np.array_equal(from_blob(blobs[2]), vectors[2])
    assert np.array_equal(stack_blobs(blobs, 128), vectors)
    assert stack_blobs([], 128).shape == (0, 128)
    assert to_blob(vectors[0].astype(">f4")) == blobs[0]


def test_snapshots_trained_before_0003_get_their_size(tmp_path: Path) -> None:
    """A collection trained under schema 0002 upgrades with its snapshot's size counted, and no
    threshold: identify computes it from that size until the collection is trained again."""
    database = Database.from_settings(Settings(data_dir=tmp_path), migrate=False)
    config = alembic_config()
    stamp = "'2026-01-01 00:00:00'"
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                "INSERT INTO api_keys (id, name, secret_sha256, created) "
                f"VALUES ('k', 'o', 'x', {stamp})"
            )
        )
        for enrollment, images in (("e1", 2), ("e2", 1)):
            connection.execute(
                text(
                    "INSERT INTO enrollments (id, owner_id, name, created, updated) "
                    f"VALUES ('{enrollment}', 'k', NULL, {stamp}, {stamp})"
                )
            )
            for position in range(images):
                connection.execute(
                    text(
                        "INSERT INTO embeddings (enrollment_id, position, vector, recipe, created) "
                        f"VALUES ('{enrollment}', {position}, :v, 'r', {stamp})"
                    ),
                    {"v": to_blob(np.ones(128, np.float32))},
                )
        for name, trained in (("c1", 0), ("c2", None)):
            connection.execute(
                text(
                    "INSERT INTO collections (id, owner_id, name, unknowns, created, updated, "
                    "revision, trained_revision, training, snapshot_version) VALUES "
                    f"('{name}', 'k', '{name}', false, {stamp}, {stamp}, 0, :t, false, 1)"
                ),
                {"t": trained},
            )
        connection.execute(text("INSERT INTO trained_embeddings SELECT 'c1', id FROM embeddings"))
    database.migrate()
    with database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, trained_people, trained_embeddings, identify_threshold "
                "FROM collections ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [("c1", 2, 3, None), ("c2", None, None, None)]


def test_0006_keeps_every_trained_snapshot_as_a_revision(tmp_path: Path) -> None:
    """Upgrading to the revision-based snapshot: a collection trained before a member joined
    still identifies against what it was trained on, and ids of deleted rows are not reused."""
    database = Database.from_settings(Settings(data_dir=tmp_path), migrate=False)
    config = alembic_config()
    stamp = "'2026-01-01 00:00:00'"
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text(
                "INSERT INTO api_keys (id, name, secret_sha256, created) "
                f"VALUES ('k', 'o', 'x', {stamp})"
            )
        )
        connection.execute(
            text(
                "INSERT INTO collections (id, owner_id, name, unknowns, created, updated, "
                "revision, trained_revision, training, snapshot_version) VALUES "
                f"('c1', 'k', 'c1', false, {stamp}, {stamp}, 2, 1, false, 1)"
            )
        )
        for enrollment, images in (("e1", 2), ("e2", 1)):
            connection.execute(
                text(
                    "INSERT INTO enrollments (id, owner_id, name, created, updated) "
                    f"VALUES ('{enrollment}', 'k', NULL, {stamp}, {stamp})"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO collection_members (collection_id, enrollment_id, added) "
                    f"VALUES ('c1', '{enrollment}', {stamp})"
                )
            )
            for position in range(images):
                connection.execute(
                    text(
                        "INSERT INTO embeddings (enrollment_id, position, vector, recipe, created) "
                        f"VALUES ('{enrollment}', {position}, :v, 'r', {stamp})"
                    ),
                    {"v": to_blob(np.ones(128, np.float32))},
                )
        # Trained on e1 only (e2 joined afterwards: revision 2 > trained 1).
        connection.execute(
            text(
                "INSERT INTO trained_embeddings SELECT 'c1', e.id FROM embeddings e "
                "WHERE e.enrollment_id = 'e1'"
            )
        )
    database.migrate()
    with database.reading() as session:
        collection = session.get_one(Collection, "c1")
        assert collection.trained_revision == 1
        bounds = SnapshotBounds(
            "c1", collection.trained_revision, collection.trained_watermark or 0, "r"
        )
        held = session.execute(bounds.select(Embedding.enrollment_id)).scalars().all()
        assert sorted(held) == ["e1", "e1"]
        highest = session.scalar(select(func.max(Embedding.id)))
    with database.transaction() as session:
        session.execute(delete(Embedding).where(Embedding.id == highest))
    with database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO embeddings (enrollment_id, position, vector, recipe, created) "
                f"VALUES ('e2', 5, :v, 'r', {stamp})"
            ),
            {"v": to_blob(np.ones(128, np.float32))},
        )
        assert session.scalar(select(func.max(Embedding.id))) == (highest or 0) + 1
    assert "trained_embeddings" not in inspect(database.engine).get_table_names()


def test_driver_chunks_are_the_statements_rows_and_bind_plain_values_only(
    tmp_path: Path,
) -> None:
    """The driver's tuples for a training's million-row reads (store/db.py `driver_chunks`):
    the same rows SQLAlchemy returns, in chunks of the size asked, and a parameter the driver
    would convert otherwise than SQLAlchemy (a date) refused instead of silently mis-bound."""
    database = Database.from_settings(Settings(data_dir=tmp_path))
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_keys (id, name, secret_sha256, created) "
                "VALUES ('k', 'key', 'x', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO enrollments (id, owner_id, name, created, updated) VALUES "
                "('a', 'k', 'A', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), "
                "('b', 'k', 'B', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    statement = select(text("id"), text("name")).select_from(text("enrollments"))
    wanted = statement.where(text("name = :name").bindparams(name="B"))
    with database.engine.connect() as connection:
        expected = [tuple(row) for row in connection.execute(wanted)]
    assert list(database.driver_chunks(wanted, 10)) == [expected] == [[("b", "B")]]
    ordered = statement.order_by(text("id"))
    assert list(database.driver_chunks(ordered, 1)) == [[("a", "A")], [("b", "B")]]
    dated = statement.where(text("created < :at").bindparams(at=datetime.datetime(2027, 1, 1)))
    with pytest.raises(TypeError, match="integers and strings only"):
        list(database.driver_chunks(dated, 10))


def test_a_raw_read_gives_its_connection_back_whatever_it_raises(tmp_path: Path) -> None:
    database = Database.from_settings(Settings(data_dir=tmp_path))

    def fails(connection: object) -> None:
        raise ValueError("not the database's error")

    with pytest.raises(ValueError, match="not the database's"):
        database.read_raw(fails)
    assert database.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_two_transactions_that_read_then_write_one_row_both_count(tmp_path: Path) -> None:
    """A transaction's reads are part of it on SQLite (store/db.py `_sqlite_begin`): left to
    the driver, both read 0 and both wrote 1, and one update was lost (a collection's training
    mark, in eval ident)."""
    database = Database.from_settings(Settings(data_dir=tmp_path))
    with database.transaction() as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    read = threading.Barrier(2, timeout=5)

    def add_one() -> None:
        with database.transaction() as session:
            value = session.execute(text("SELECT n FROM counter")).scalar_one()
            with contextlib.suppress(threading.BrokenBarrierError):
                read.wait(timeout=0.5)  # unisolated, both have read 0 by now
            session.execute(text("UPDATE counter SET n = :n"), {"n": value + 1})

    threads = [threading.Thread(target=add_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with database.reading() as session:
        assert session.execute(text("SELECT n FROM counter")).scalar_one() == 2
