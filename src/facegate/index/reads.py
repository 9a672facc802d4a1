"""What the in-process gallery reads from the store on the DB-API cursor, one class per backend.

The request path asks which rows left a collection since its snapshot (the deletion log), sent
before the index's scan so that the answer's round trip overlaps the scan (PostgreSQL: libpq's
asynchronous API on the pooled connection), where the snapshot's index carries its rows'
vectors and names; otherwise it re-reads a search's best few candidates and the names of the
answers (on PostgreSQL in the same statement). Training reads the rows it adds to an index
(vectors with their enrollment's id and name, in one pass), and what changed since the
previous index.
Through SQLAlchemy (pool checkout, expanding IN, result rows, blob conversion) these cost ~0.5 ms
more per search and ~5 s more per build of 10^6 rows, so they run on the driver's cursor, with
SQL written for each backend: SQLite takes ``?`` parameters, a limited number of them (ids go in
chunks of ``IN_CHUNK``) and hints on join order; PostgreSQL takes ``%s``, an array of ids in one
parameter, and returns pgvector's binary form of a vector on a binary cursor.

Both return vectors as float32 matrices, rows in the order of the rows read.
"""

from __future__ import annotations

import functools
import select
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import pq
from sqlalchemy import TextClause, text

from facegate.store.vectors import stack_blobs

# Ids bound per statement where a list of them is read (SQLite allows 32,766 parameters).
IN_CHUNK = 500
# Removals since a snapshot that a search applies to its local rows itself; past this many
# (a collection trained long ago and much deleted from since) it re-reads its candidates from
# the store instead, so a search never reads an unbounded list.
MAX_PENDING_REMOVALS = 1_000

# What ``StoreReads.removals`` returns: called once, it waits for the answer and gives the
# embedding ids removed since the snapshot, or None where the log cannot say (the collection
# is gone, or the log no longer reaches back to the snapshot, or holds too many since).
PendingRemovals = Callable[[], NDArray[np.int64] | None]


@dataclass(frozen=True)
class Candidates:
    """A search's candidates still in the collection, a row each."""

    labels: list[str]  # enrollment ids
    recipes: list[str]
    vectors: NDArray[np.float32]
    # Read with the rows where that saves a round trip to the server (PostgreSQL); None where
    # ``names`` reads those of the labels answered.
    names: dict[str, str | None] | None = None


class StoredRows(NamedTuple):
    """Embeddings as a training reads them for an index, a row each, by ascending id."""

    ids: NDArray[np.int64]
    vectors: NDArray[np.float32]
    enrollment_ids: list[str]
    names: list[str | None]

    def where(self, keep: NDArray[np.bool_]) -> StoredRows:
        """The rows ``keep`` marks (these rows themselves when it marks all: a training's
        chunk read as an id range usually holds only rows it wants)."""
        if keep.all():
            return self
        chosen = np.flatnonzero(keep)
        return StoredRows(
            self.ids[chosen],
            self.vectors[chosen],
            [self.enrollment_ids[row] for row in chosen],
            [self.names[row] for row in chosen],
        )


class StoreReads(Protocol):
    # What an update reads instead of every member: the embeddings made since the previous
    # snapshot whose enrollment is a member at this one, and the older embeddings of the
    # members added since (SQLAlchemy statements: training runs them once, not per request).
    new_embeddings: TextClause
    new_members: TextClause

    def cursor(self, connection: Any) -> Any:
        """A cursor of a pooled DB-API connection, as these statements need it."""
        ...

    def removals(self, connection: Any, collection_id: str, revision: int) -> PendingRemovals:
        """Sends the question "which embeddings left the collection after ``revision``" on a
        pooled connection (of ``Database.read_raw``) and returns how to collect its answer,
        which must be called before the connection is used again or given back."""
        ...

    def candidates(
        self, cursor: Any, ids: Sequence[int], collection_id: str, dimension: int
    ) -> Candidates:
        """Of these embedding ids, those whose enrollment is still a member of the collection."""
        ...

    def names(
        self, cursor: Any, found: Candidates, enrollment_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """The names of these enrollments, which are among ``found``."""
        ...

    def rows(self, cursor: Any, ids: NDArray[np.int64], dimension: int) -> StoredRows:
        """The rows of these ascending embedding ids still present, with their enrollment's id
        and name, in ascending order. ``ids`` may be read as the range from the first to the
        last when most ids in it are wanted (the caller drops the others)."""
        ...


def _stored(rows: Sequence[tuple[Any, ...]], vectors: NDArray[np.float32]) -> StoredRows:
    """Rows of (id, vector, enrollment id, name), their vectors already a matrix."""
    return StoredRows(
        np.array([r[0] for r in rows], dtype=np.int64),
        vectors,
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


# -- SQLite ----------------------------------------------------------------------------------

# SQLite keeps the order of CROSS JOINed tables, so the change drives each statement.
_NEW_EMBEDDINGS = (
    "SELECT e.id FROM embeddings AS e CROSS JOIN collection_members AS m "
    "WHERE e.id > :since_watermark AND e.id <= :watermark AND e.recipe = :recipe "
    "AND m.collection_id = :collection AND m.enrollment_id = e.enrollment_id "
    "AND m.added_revision <= :revision"
)
# By the index on (collection_id, added_revision), then each member's embeddings by enrollment
# (left to choose, SQLite scans the recipe's index for each member: 612 s for 1,000 members
# at 10^6).
_NEW_MEMBERS = (
    "SELECT e.id FROM collection_members AS m "
    "CROSS JOIN embeddings AS e {hint} "
    "WHERE m.collection_id = :collection AND m.added_revision > :since_revision "
    "AND m.added_revision <= :revision AND e.enrollment_id = m.enrollment_id "
    "AND e.id <= :since_watermark AND e.recipe = :recipe"
)
# A search's candidates that are still members, in one statement: the candidates' ids drive it
# and each membership is a primary-key lookup (left to choose, the planner may walk every
# membership of a large collection, or the recipe's index: the recipe is checked on the rows
# instead). The candidates come from the snapshot's own index, so they are within its watermark
# and were members at its revision; only whether they still are is asked.
CANDIDATE_ROWS = (
    "SELECT e.enrollment_id, e.vector, e.recipe FROM embeddings AS e "
    "CROSS JOIN collection_members AS m "
    "WHERE e.id IN ({ids}) AND m.collection_id = ? AND m.enrollment_id = e.enrollment_id"
)
# The deletion log past a snapshot, then how far back it reaches: read in that order, a pruning
# in between shows in the second (and the search re-reads instead).
REMOVALS = (
    "SELECT embedding_id FROM snapshot_removals "
    "WHERE collection_id = ? AND removed_revision > ? LIMIT ?"
)
LOGGED_AFTER = "SELECT removals_logged_after FROM collections WHERE id = ?"
# Names are read for the labels answered only: at 10^6 each lookup is ~30 us of a warm cache.
NAMES = "SELECT id, name FROM enrollments WHERE id IN ({ids})"
# A training's rows with their enrollment's id and name, each name a lookup by primary key: one
# pass with the vectors, instead of every row's ids and name read first and held as one list.
_ROWS = (
    "SELECT e.id, e.vector, e.enrollment_id, n.name FROM embeddings AS e "
    "CROSS JOIN enrollments AS n WHERE {where} AND n.id = e.enrollment_id ORDER BY e.id"
)
ROW_RANGE = _ROWS.format(where="e.id >= ? AND e.id <= ?")
ROWS = _ROWS.format(where="e.id IN ({ids})")


@functools.cache
def _with_ids(statement: str, count: int) -> str:
    # Only "?" placeholders are put in: the ids themselves are bound. One SQL string per count,
    # which sqlite3 keeps prepared.
    return statement.format(ids=", ".join("?" * count))


def _rows_by_ids(
    cursor: Any, statement: str, ids: Sequence[int | str], *after: object
) -> list[tuple[Any, ...]]:
    """``statement`` run for ``ids`` (bound, in chunks) and ``after`` bound after them."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), IN_CHUNK):
        chunk = ids[start : start + IN_CHUNK]
        cursor.execute(_with_ids(statement, len(chunk)), [*chunk, *after])
        rows += cursor.fetchall()
    return rows


def _dense(ids: NDArray[np.int64]) -> bool:
    """Whether most of an ascending chunk's id range is wanted: read as a range then."""
    return int(ids[-1]) - int(ids[0]) < 2 * len(ids)


def _removed(
    logged_after: int | None, removed: list[int], revision: int
) -> NDArray[np.int64] | None:
    """The removals a search applies itself; None where the log cannot say."""
    pruned_past_the_snapshot = logged_after is not None and logged_after > revision
    if pruned_past_the_snapshot or len(removed) > MAX_PENDING_REMOVALS:
        return None
    return np.array(removed, dtype=np.int64)


class SqliteReads:
    new_embeddings = text(_NEW_EMBEDDINGS)
    new_members = text(_NEW_MEMBERS.format(hint="INDEXED BY ix_embeddings_enrollment_position"))

    def cursor(self, connection: Any) -> Any:
        return connection.cursor()

    def removals(self, connection: Any, collection_id: str, revision: int) -> PendingRemovals:
        # In process, a lookup costs less than overlapping it would: asked at once.
        cursor = connection.cursor()
        try:
            cursor.execute(REMOVALS, (collection_id, revision, MAX_PENDING_REMOVALS + 1))
            removed = [row[0] for row in cursor.fetchall()]
            cursor.execute(LOGGED_AFTER, (collection_id,))
            collection = cursor.fetchone()
        finally:
            cursor.close()
        answer = None if collection is None else _removed(collection[0], removed, revision)
        return lambda: answer

    def candidates(
        self, cursor: Any, ids: Sequence[int], collection_id: str, dimension: int
    ) -> Candidates:
        rows = _rows_by_ids(cursor, CANDIDATE_ROWS, ids, collection_id)
        return Candidates(
            [r[0] for r in rows], [r[2] for r in rows], stack_blobs([r[1] for r in rows], dimension)
        )

    def names(
        self, cursor: Any, found: Candidates, enrollment_ids: Sequence[str]
    ) -> dict[str, str | None]:
        return dict(_rows_by_ids(cursor, NAMES, enrollment_ids))

    def rows(self, cursor: Any, ids: NDArray[np.int64], dimension: int) -> StoredRows:
        if _dense(ids):
            cursor.execute(ROW_RANGE, (int(ids[0]), int(ids[-1])))
            rows = cursor.fetchall()
        else:
            rows = _rows_by_ids(cursor, ROWS, [int(i) for i in ids])
        return _stored(rows, stack_blobs([r[1] for r in rows], dimension))


# -- PostgreSQL ------------------------------------------------------------------------------

# The candidates drive the statement whatever the planner's statistics say: the membership is a
# LATERAL lookup by primary key per row (its LIMIT keeps it from becoming a join), the name a
# subquery by primary key. As a plain join, before the members' table was analysed (after a bulk
# load), PostgreSQL hashed every membership of the collection: at 2 * 10^4 members that statement
# took 7.4 ms and a search 9.5 ms p50, 2.4 ms with this one. Names come with the rows: a lookup
# in the server costs less than a second round trip.
PG_CANDIDATE_ROWS = (
    "SELECT e.enrollment_id, e.vector, e.recipe, "
    "(SELECT n.name FROM enrollments AS n WHERE n.id = e.enrollment_id) "
    "FROM embeddings AS e CROSS JOIN LATERAL ("
    "SELECT 1 FROM collection_members AS m "
    "WHERE m.collection_id = %s AND m.enrollment_id = e.enrollment_id LIMIT 1) AS member "
    "WHERE e.id = ANY(%s)"
)
# The deletion log's answer in one statement (one snapshot of the tables): how far back it
# reaches, and the removals past the snapshot; no row when the collection is gone. Sent as
# text, its parameters typed by the columns they meet. In the index's order: planned without
# the values (the read connections' generic plans), PostgreSQL otherwise scanned the whole
# log for the few rows past the snapshot.
PG_REMOVALS = (
    b"SELECT c.removals_logged_after, ARRAY(SELECT r.embedding_id FROM snapshot_removals AS r "
    b"WHERE r.collection_id = $1 AND r.removed_revision > $2 "
    b"ORDER BY r.removed_revision LIMIT $3) "
    b"FROM collections AS c WHERE c.id = $1"
)
# Each name a subquery by primary key: as a join, PostgreSQL hashed every enrollment for each
# chunk of 50,000 rows (a sequential scan of the table and a sort on disk; 7.95 s for 10^6
# rows instead of 3.4 s, and 1.2 s without the names).
_PG_ROWS = (
    "SELECT e.id, e.vector, e.enrollment_id, "
    "(SELECT n.name FROM enrollments AS n WHERE n.id = e.enrollment_id) "
    "FROM embeddings AS e WHERE {where} ORDER BY e.id"
)
PG_ROW_RANGE = _PG_ROWS.format(where="e.id >= %s AND e.id <= %s")
PG_ROW_IDS = _PG_ROWS.format(where="e.id = ANY(%s)")


def pgvector_rows(values: Sequence[bytes], dimension: int) -> NDArray[np.float32]:
    """pgvector's binary form (int16 dimension, int16 unused, then big-endian float32s) of
    several vectors as one matrix: the 4-byte header reads as one float column, dropped."""
    if not values:
        return np.zeros((0, dimension), np.float32)
    joined = np.frombuffer(b"".join(values), dtype=">f4").reshape(len(values), dimension + 1)
    return joined[:, 1:].astype(np.float32)


class PostgresReads:
    new_embeddings = text(_NEW_EMBEDDINGS)
    # PostgreSQL's planner takes the members' index, then each one's embeddings, by itself.
    new_members = text(_NEW_MEMBERS.format(hint=""))

    def cursor(self, connection: Any) -> Any:
        # Binary results: a vector comes as pgvector's binary form, not as text to parse.
        return connection.driver_connection.cursor(binary=True)

    def removals(self, connection: Any, collection_id: str, revision: int) -> PendingRemovals:
        # On the libpq connection under psycopg's (idle, autocommit: nothing of psycopg's
        # state changes), sent without waiting; ``collect`` reads every result back, so the
        # connection is idle again when it returns, or is discarded.
        pgconn = connection.driver_connection.pgconn
        parameters = [collection_id.encode(), b"%d" % revision, b"%d" % (MAX_PENDING_REMOVALS + 1)]
        pgconn.send_query_params(PG_REMOVALS, parameters)

        def collect() -> NDArray[np.int64] | None:
            try:
                results = _pg_results(pgconn)
            except BaseException as error:
                # A connection the server dropped is left to ``read_raw``, which discards it
                # and runs the search again; one still open is in a state unknown (results
                # unread): never pooled again.
                if pgconn.status == pq.ConnStatus.OK:
                    connection.invalidate(error)
                raise
            error_message = next(
                (r.error_message for r in results if r.status != pq.ExecStatus.TUPLES_OK), None
            )
            if error_message is not None:
                raise psycopg.DatabaseError(error_message.decode(errors="replace"))
            (result,) = results
            if result.ntuples == 0:
                return None
            logged_after, removed = result.get_value(0, 0), result.get_value(0, 1)
            return _removed(
                None if logged_after is None else int(logged_after),
                [int(i) for i in bytes(removed or b"{}").strip(b"{}").split(b",") if i],
                revision,
            )

        return collect

    def candidates(
        self, cursor: Any, ids: Sequence[int], collection_id: str, dimension: int
    ) -> Candidates:
        cursor.execute(PG_CANDIDATE_ROWS, (collection_id, list(ids)))
        rows = cursor.fetchall()
        return Candidates(
            [r[0] for r in rows],
            [r[2] for r in rows],
            pgvector_rows([r[1] for r in rows], dimension),
            {r[0]: r[3] for r in rows},
        )

    def names(
        self, cursor: Any, found: Candidates, enrollment_ids: Sequence[str]
    ) -> dict[str, str | None]:
        assert found.names is not None  # read with the candidates
        return {enrollment_id: found.names[enrollment_id] for enrollment_id in enrollment_ids}

    def rows(self, cursor: Any, ids: NDArray[np.int64], dimension: int) -> StoredRows:
        if _dense(ids):
            cursor.execute(PG_ROW_RANGE, (int(ids[0]), int(ids[-1])))
        else:
            cursor.execute(PG_ROW_IDS, ([int(i) for i in ids],))
        rows = cursor.fetchall()
        return _stored(rows, pgvector_rows([r[1] for r in rows], dimension))


def _pg_results(pgconn: Any) -> list[Any]:
    """Every result of the query sent on ``pgconn``, waiting for the socket without the GIL
    (``select``) rather than in libpq."""
    results: list[Any] = []
    while True:
        pgconn.consume_input()
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            return results
        results.append(result)


def reads_for(dialect: str) -> StoreReads:
    return PostgresReads() if dialect == "postgresql" else SqliteReads()
