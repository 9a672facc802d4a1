"""PostgreSQL's gallery on a real PostgreSQL: each machine's index folder in front of pgvector.

A "machine" here is a data folder: two galleries on one database with different data folders
behave as two machines would (the index folders are per data folder, the rows shared).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import select, text

from facegate.config import Settings
from facegate.index import ann, reads
from facegate.index.postgres import PostgresGallery
from facegate.store.models import Collection
from facegate.store.snapshot import prune_removals
from tests.unit.test_gallery import (
    DIM,
    RECIPE,
    Store,
    _probes,
    _top1,
    check_local_rows_answer_as_the_store,
    index_folders,
)

pytestmark = pytest.mark.integration

PEOPLE = 3000
LIMIT = 500


@pytest.fixture
def stores(postgres_url: str) -> Iterator[Callable[[Path, int], Store]]:
    """Makes Stores of ``people`` on the test's PostgreSQL database, disposed after."""
    made: list[Store] = []

    def make(folder: Path, people: int = PEOPLE) -> Store:
        made.append(Store(folder, people, limit=LIMIT, database_url=postgres_url))
        return made[-1]

    yield make
    for store in made:
        store.database.dispose()


def _record(store: Store, name: str) -> None:
    """What a training records after building ``name`` (service/training.py): the index, and
    the deletion log pruned through the previous snapshot's revision."""
    with store.database.transaction() as session:
        collection = session.get_one(Collection, "c")
        previous = collection.trained_revision
        collection.index_name = name
        collection.trained_revision = store.bounds().revision
        if previous is not None:
            prune_removals(session, "c", previous)


def _machine(store: Store, folder: Path) -> PostgresGallery:
    settings = Settings(
        data_dir=folder, exact_search_limit=LIMIT, database_url=store.settings.database_url
    )
    gallery = PostgresGallery(store.database, settings)
    gallery.open(RECIPE, DIM)
    return gallery


def _rows(folder: Path) -> tuple[int, int]:
    """An index folder's rows and live rows."""
    index = ann.load(folder)
    return len(index.keys), index.live


def test_the_trainers_index_answers_like_exact_search_and_masks_deletions(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    store = stores(tmp_path, PEOPLE)
    assert isinstance(store.gallery, PostgresGallery)
    name = store.build()
    assert name is not None and (tmp_path / "index" / name / ann.INDEX_FILE).is_file()
    probes = _probes(store, 40)
    found = store.gallery.search(store.snapshot(name, PEOPLE), DIM, probes, 5)
    assert _top1(found, store.exact(probes, 5)) >= 0.96
    assert found[0][0].name == found[0][0].label.upper()

    gone = {hits[0].label for hits in found[:10]}
    store.delete(gone)
    after = store.gallery.search(store.snapshot(name, PEOPLE), DIM, probes, 3)
    assert not gone & {h.label for hits in after for h in hits}
    updated = store.build(previous=name)
    assert updated is not None
    old_rows, old_live = _rows(tmp_path / "index" / name)
    new_rows, new_live = _rows(tmp_path / "index" / updated)
    # Updated from the previous folder (same rows, the deleted ones blanked), not rebuilt.
    assert new_rows == old_rows and new_live < old_live


def test_the_local_rows_answer_as_postgresql_would(
    tmp_path: Path, stores: Callable[[Path, int], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion log asked before the scan through libpq's asynchronous API: the answers
    are those of the re-read, and a deletion is seen by the next search."""
    check_local_rows_answer_as_the_store(stores(tmp_path, PEOPLE), monkeypatch)


def test_a_failed_deletion_check_leaves_the_read_connections_usable(
    tmp_path: Path, stores: Callable[[Path, int], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores(tmp_path, PEOPLE)
    name = store.build()
    snapshot = store.snapshot(name, PEOPLE)
    probes = _probes(store, 12)
    with monkeypatch.context() as patched:
        patched.setattr(reads, "PG_REMOVALS", b"SELECT $1::text, $2::int / 0, $3::int")
        with pytest.raises(psycopg.DatabaseError, match="division by zero"):
            store.gallery.search(snapshot, DIM, probes[:1], 3)
    # Every pooled connection idle again: searches after it answer (one connection each).
    found = [store.gallery.search(snapshot, DIM, probe[None, :], 3)[0] for probe in probes]
    assert _top1(found, store.exact(probes, 3)) >= 0.9


def test_a_read_connection_the_server_dropped_is_replaced_under_a_search(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """The deletion log's question goes out on a pooled connection that is not pinged: one
    the server closed meanwhile (a restart, an idle timeout) fails on use, is discarded, and
    the search runs again on a new one."""
    store = stores(tmp_path, PEOPLE)
    name = store.build()
    snapshot = store.snapshot(name, PEOPLE)
    probes = _probes(store, 4)
    before = store.gallery.search(snapshot, DIM, probes, 3)
    with store.database.engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend') AS ended"
            )
        ).scalar_one()
    assert ended >= 1  # the read connection the first searches used
    assert store.gallery.search(snapshot, DIM, probes, 3) == before


def test_a_small_snapshot_is_searched_exactly_in_process(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    store = stores(tmp_path, 200)
    assert store.build() is None
    probes = _probes(store, 20)
    found = store.gallery.search(store.snapshot(None, 220), DIM, probes, 5)
    assert [[h.label for h in hits] for hits in found] == store.exact(probes, 5)
    # Unknown size (trained by a machine searching with pgvector alone): pgvector answers.
    unknown = store.gallery.search(store.snapshot(None), DIM, probes, 5)
    assert [[h.label for h in hits] for hits in unknown] == store.exact(probes, 5)


def test_a_machine_without_the_index_answers_with_pgvector_and_builds_its_own(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    store = stores(tmp_path / "a", PEOPLE)
    first = store.build()
    assert first is not None
    _record(store, first)
    other = _machine(store, tmp_path / "b")
    probes = _probes(store, 40)
    expected = store.exact(probes, 3)

    # Machine b has no folder for the snapshot: pgvector answers, and b builds one meanwhile.
    answered = other.search(store.snapshot(first, PEOPLE), DIM, probes, 3)
    assert _top1(answered, expected) >= 0.9
    assert other.wait_for_catch_up(120)
    mine = tmp_path / "b" / "index" / first
    assert (mine / ann.INDEX_FILE).is_file()
    assert _rows(mine) == _rows(tmp_path / "a" / "index" / first)
    through_own = other.search(store.snapshot(first, PEOPLE), DIM, probes, 3)
    assert _top1(through_own, expected) >= 0.96

    # A deletion (through the store a's service writes to) is masked on both machines at
    # once, before any training: each asks the deletion log beside its own local rows.
    assert ann.load(mine).local is not None
    gone = {hits[0].label for hits in through_own[:5]}
    store.delete(gone)
    for machine in (store.gallery, other):
        masked = machine.search(store.snapshot(first, PEOPLE), DIM, probes, 3)
        assert not gone & {h.label for hits in masked for h in hits}
        assert _top1(masked, store.exact(probes, 3, without=frozenset(gone))) >= 0.9

    # Then a training on a: b updates its own folder to the new snapshot (the deletion log
    # still reaches back to it) and drops the old one.
    second = store.build(previous=first)
    assert second is not None
    _record(store, second)
    other.search(store.snapshot(second, PEOPLE), DIM, probes, 3)
    assert other.wait_for_catch_up(120)
    assert index_folders(tmp_path / "b" / "index" / "c") == [Path(second).name]
    assert _rows(tmp_path / "b" / "index" / second) == _rows(tmp_path / "a" / "index" / second)
    answers = other.search(store.snapshot(second, PEOPLE), DIM, probes, 3)
    assert not gone & {h.label for hits in answers for h in hits}


def test_an_index_older_than_the_deletion_log_is_not_updated(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """Two trainings happened elsewhere since machine b's folder was made: the removals
    between them were pruned from the log, so b builds anew instead of updating."""
    store = stores(tmp_path / "a", PEOPLE)
    first = store.build()
    assert first is not None
    _record(store, first)
    other = _machine(store, tmp_path / "b")
    other.search(store.snapshot(first, PEOPLE), DIM, _probes(store, 1), 1)
    assert other.wait_for_catch_up(120)
    names = [first]
    for gone in ({"p00001"}, {"p00002"}):
        store.delete(gone)
        names.append(str(store.build(previous=names[-1])))
        _record(store, names[-1])
    with store.database.reading() as session:
        logged_after = session.scalar(select(Collection.removals_logged_after))
    assert (
        logged_after is not None
        and logged_after
        > json.loads((tmp_path / "b" / "index" / first / ann.META_FILE).read_text())["revision"]
    )

    other.search(store.snapshot(names[-1], PEOPLE), DIM, _probes(store, 1), 1)
    assert other.wait_for_catch_up(120)
    rows, live = _rows(tmp_path / "b" / "index" / names[-1])
    # Built anew: no blank rows, and neither deleted person's (two rows each).
    assert rows == live == PEOPLE + PEOPLE // 10 - 4


def test_the_candidates_are_read_by_primary_key_before_any_statistics(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """Right after a bulk load the tables have no statistics: the planner must still look up
    each candidate's membership and name rather than hash the whole collection (as a plain
    join did: a search at 2 * 10^4 members took 9.5 ms instead of 2.4)."""
    store = stores(tmp_path, PEOPLE)
    statement = reads.PG_CANDIDATE_ROWS.replace("%s", "'c'", 1).replace("%s", "'{5,17,900}'")
    with store.database.engine.connect() as connection:
        analysed = connection.execute(
            text("SELECT count(*) FROM pg_stats WHERE tablename = 'collection_members'")
        ).scalar_one()
        plan = "\n".join(connection.execute(text(f"EXPLAIN {statement}")).scalars())
    assert analysed == 0
    assert "Hash" not in plan and "Seq Scan" not in plan
    assert "pk_collection_members" in plan and "pk_enrollments" in plan, plan


def test_the_searches_re_read_is_planned_once_and_still_by_primary_key(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """The read connections take PostgreSQL's generic plan (store/db.py ``_create_reads_engine``:
    planning for each execution's values cost more than running the re-read). Planned without
    the values and before any statistics, it must still look each candidate up by primary key."""
    store = stores(tmp_path, PEOPLE)
    statement = reads.PG_CANDIDATE_ROWS.replace("%s", "$1", 1).replace("%s", "$2")

    def plan(connection: Any) -> tuple[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            mode = cursor.fetchone()[0]
            cursor.execute(f"PREPARE candidates AS {statement}")
            try:
                cursor.execute("EXPLAIN EXECUTE candidates('c', '{5,17,900}')")
                return mode, "\n".join(row[0] for row in cursor.fetchall())
            finally:
                cursor.execute("DEALLOCATE candidates")

    mode, generic = store.database.read_raw(plan)
    assert mode == "force_generic_plan"
    assert "$1" in generic and "$2" in generic, generic  # planned without the values
    assert "Hash" not in generic and "Seq Scan" not in generic, generic
    assert "pk_collection_members" in generic and "pk_enrollments" in generic, generic


def test_the_searches_deletion_log_question_reads_only_the_removals_it_wants(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """The log holds the removals folded into the snapshot too, until the next training prunes
    them (after a mass deletion, many): the statement finds those after the snapshot's
    revision by the (collection, revision) index, not by walking the collection's log."""
    store = stores(tmp_path, 200)
    with store.database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO snapshot_removals (collection_id, embedding_id, removed_revision) "
                "SELECT 'c', n, n FROM generate_series(1, 20000) AS n"
            )
        )
        session.execute(text("ANALYZE snapshot_removals"))

    def plan(connection: Any) -> str:
        with connection.cursor() as cursor:
            cursor.execute(f"PREPARE removals AS {reads.PG_REMOVALS.decode()}")
            try:
                cursor.execute("EXPLAIN EXECUTE removals('c', 19990, 1001)")
                return "\n".join(row[0] for row in cursor.fetchall())
            finally:
                cursor.execute("DEALLOCATE removals")

    explained = store.database.read_raw(plan)
    assert "ix_snapshot_removals_collection_revision" in explained, explained
    # And its answer: the ten removals after revision 19,990 (the log reaches back to 0).
    found = store.database.read_raw(
        lambda connection: reads.PostgresReads().removals(connection, "c", 19_990)()
    )
    assert found is not None and sorted(found.tolist()) == list(range(19_991, 20_001))


def test_a_trainings_row_reads_look_each_name_up_by_its_key(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """A build reads its rows with their names a chunk of ids at a time (reads.PostgresReads
    ``rows``): written as a join, PostgreSQL hashed the whole enrollments table for every
    chunk (at 10^6, 20 sequential scans and sorts on disk: 7.95 s instead of 3.4)."""
    store = stores(tmp_path, PEOPLE)
    with store.database.engine.connect() as connection:
        explained = "\n".join(
            row[0]
            for row in connection.exec_driver_sql(f"EXPLAIN {reads.PG_ROW_RANGE}", (1, 1_000_000))
        )
    assert "Seq Scan on enrollments" not in explained and "pk_enrollments" in explained, explained
    wanted = np.arange(1, 11, dtype=np.int64)
    postgres = reads.PostgresReads()

    def read(connection: Any) -> reads.StoredRows:
        with contextlib.closing(postgres.cursor(connection)) as cursor:
            return postgres.rows(cursor, wanted, DIM)

    found = store.database.read_raw(read)
    assert found.ids.tolist() == wanted.tolist()
    assert found.names == [enrollment.upper() for enrollment in found.enrollment_ids]


def test_a_snapshots_one_off_reads_are_planned_for_their_values(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """A training's million-row reads (``driver_chunks``) run once: on the main engine, where
    PostgreSQL plans each statement for its values, not on the read connections."""
    store = stores(tmp_path, PEOPLE)
    setting = select(text("current_setting('plan_cache_mode')"))
    assert list(store.database.driver_chunks(setting, 10)) == [[("auto",)]]


def test_a_training_after_a_bulk_load_analyses_the_tables_it_reads(
    tmp_path: Path, stores: Callable[[Path, int], Store]
) -> None:
    """The snapshot's join is planned from these statistics (store/db.py): missing, it was a
    lookup per member through the recipe's index, 13.6 s at 2 * 10^4 members."""
    store = stores(tmp_path, PEOPLE)
    store.database.refresh_statistics()
    with store.database.engine.connect() as connection:
        analysed = set(
            connection.execute(
                text("SELECT tablename FROM pg_stats WHERE attname IN ('collection_id', 'recipe')")
            ).scalars()
        )
    assert analysed == {"collection_members", "embeddings"}
    assert store.database.refresh_statistics() == []  # nothing changed since
