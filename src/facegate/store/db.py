"""The database handle: one SQLAlchemy engine, transactional sessions, migrations, a ping, and
on PostgreSQL a second engine for the request path's single read statements.

The data folder is made 0700 on every backend. SQLite files hold embeddings and key digests: the
files are made 0600 (the ``-wal`` and ``-shm`` files SQLite creates take the main file's mode),
deleted rows are zeroed (``secure_delete``) and a delete ends with a checkpoint that empties the
write-ahead log, where the deleted rows' old pages would otherwise stay readable until the next
automatic checkpoint.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Select, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from facegate.config import Settings

log = logging.getLogger("facegate.store")

_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")

# The tables a training reads whole. PostgreSQL's planner picks a snapshot's join by their
# statistics; believing them nearly empty (a bulk load that autovacuum has not analysed yet), it
# looks up every member's embeddings through the recipe's index: 13.6 s for 2 * 10^4 members
# instead of 21 ms, minutes at 10^6. Analysed when never analysed, or when more than STALE_SHARE
# of a table's rows (and at least STALE_ROWS) changed since its statistics were taken.
SNAPSHOT_TABLES = ("embeddings", "collection_members", "enrollments")
STALE_SHARE = 0.2
STALE_ROWS = 1000

T = TypeVar("T")

# The execution option that makes a SQLite transaction take the write lock when it begins.
WRITES = "facegate_writes"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _create_engine(url)
        # Transactions that write begin by taking SQLite's write lock (see _sqlite_begin).
        self._writer = self.engine.execution_options(**{WRITES: True})
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._reads_engine = _create_reads_engine(url) or self.engine

    @classmethod
    def from_settings(cls, settings: Settings, *, migrate: bool = True) -> Database:
        url = make_url(settings.sqlalchemy_url)
        # The data folder is private on every backend: with PostgreSQL it still holds the
        # converted model caches, and the operator expects one rule for it.
        _private_folder(settings.data_dir)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            _private_sqlite_files(Path(url.database))
        database = cls(settings.sqlalchemy_url)
        if migrate:
            database.migrate()
        return database

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed when the block ends, rolled back entirely if it raises.
        On SQLite it holds the write lock from its first statement: what it read is what it
        writes over."""
        with self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def migrate(self) -> None:
        from facegate.store.migrate import upgrade_to_head

        upgrade_to_head(self._writer)

    def after_delete(self) -> None:
        """Make a committed delete gone from disk: on SQLite, checkpoint the write-ahead log into
        the (securely zeroed) database file and truncate it. A no-op on PostgreSQL, whose
        deleted tuples go with VACUUM. If a long reader blocks the truncation past the busy
        timeout, the old pages stay in the log until the next checkpoint (logged)."""
        if self.engine.dialect.name != "sqlite":
            return
        connection = self.engine.raw_connection()  # outside any transaction, as it must be
        try:
            cursor = connection.cursor()
            busy, _frames, _done = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
        finally:
            connection.close()
        if busy:
            log.warning("the write-ahead log could not be truncated after a delete (busy)")

    def refresh_statistics(self) -> list[str]:
        """On PostgreSQL, ANALYZE those of ``SNAPSHOT_TABLES`` whose statistics are stale;
        the tables analysed (none on SQLite, whose statements fix their own join order)."""
        if self.engine.dialect.name != "postgresql":
            return []
        started = time.monotonic()
        with self.engine.begin() as connection:
            stale = list(
                connection.execute(
                    text(
                        # reltuples < 0: never analysed nor vacuumed (the change counters
                        # of a load that just ended may still be on their way).
                        "SELECT c.relname FROM pg_class AS c "
                        "JOIN pg_stat_user_tables AS s ON s.relid = c.oid "
                        "WHERE s.schemaname = current_schema() AND c.relname = ANY(:tables) "
                        "AND (c.reltuples < 0 OR (s.n_mod_since_analyze >= :rows "
                        "AND s.n_mod_since_analyze > :share * s.n_live_tup)) ORDER BY c.relname"
                    ),
                    {"tables": list(SNAPSHOT_TABLES), "rows": STALE_ROWS, "share": STALE_SHARE},
                ).scalars()
            )
            for table in stale:
                # A name from SNAPSHOT_TABLES, not from a request. ANALYZE reads a sample and
                # blocks neither readers nor writers.
                connection.execute(text(f"ANALYZE {table}"))
        if stale:
            seconds = round(time.monotonic() - started, 2)
            log.info("table statistics refreshed", extra={"tables": stale, "seconds": seconds})
        return stale

    def read_raw(self, work: Callable[[Any], T]) -> T:
        """``work`` on a DB-API connection, for read-only statements that stand alone (a
        search's look at the deletion log, or its re-read of its candidates). On PostgreSQL it
        comes from a pool of autocommit connections that are neither pinged when taken nor
        rolled back when returned: one round trip a statement instead of four (ping, BEGIN,
        the statement, ROLLBACK): a search at 2 * 10^4 took 1.42 ms p50 instead of 1.93.
        Without the ping, a connection the server dropped fails on use: it is discarded and
        ``work`` runs once more on a new one."""
        engine = self._reads_engine
        for attempt in (1, 2):
            connection = engine.raw_connection()
            try:
                return work(connection)
            except engine.dialect.loaded_dbapi.Error as error:
                dropped = engine.dialect.is_disconnect(error, connection.dbapi_connection, None)
                if dropped:
                    connection.invalidate(error)  # closed, not pooled again
                if not dropped or attempt == 2:
                    raise
                log.info("a pooled read connection was dropped by the server; reconnecting")
            finally:
                connection.close()  # back to the pool
        raise AssertionError("unreachable: the second attempt returns or raises")

    def driver_chunks(
        self, statement: Select[Any], rows_per_chunk: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        """``statement``'s rows as the driver returns them, ``rows_per_chunk`` at a time: no
        SQLAlchemy row objects nor result processing, for reads of 10^6 rows (a snapshot's
        embedding ids: 3.9 s with their enrollment ids as SQLAlchemy rows), never all of them
        as Python objects at once. Its columns and parameters must be ones the driver
        converts as SQLAlchemy would (integers, strings). On the main engine, not
        ``read_raw``: a statement run once a training is planned for its values."""
        compiled = statement.compile(
            dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True}
        )
        bound = compiled.params
        if any(not isinstance(value, int | str) for value in bound.values()):
            raise TypeError(f"driver_chunks binds integers and strings only, not {bound!r}")
        order = compiled.positiontup
        parameters = bound if order is None else [bound[name] for name in order]

        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(str(compiled), parameters)
                while chunk := cursor.fetchmany(rows_per_chunk):
                    yield list(chunk)
            finally:
                cursor.close()
        finally:
            connection.close()  # rolled back and back to the pool

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        self._reads_engine.dispose()


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    # Requests run in worker threads; each connection is still used by one thread at a time.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _create_reads_engine(url: str) -> Engine | None:
    """PostgreSQL's engine for ``Database.read_raw``; None on SQLite, whose connections are in
    process (no round trips to save).

    Its sessions plan a statement once, not for each execution's values
    (``plan_cache_mode``): left to choose, PostgreSQL went on planning the search's re-read
    for each execution's values even once psycopg had prepared it. The statements run here
    look rows up by primary key whatever the values (tests/integration/test_gallery_postgres.py);
    planned once, the re-read took 0.25 ms p50 instead of 0.41 at 2 * 10^5 enrollments and
    0.29 instead of 0.46 at 10^6, with the pages in memory (tools/plan_cache_ab.py,
    BENCHMARKS.md)."""
    if make_url(url).get_backend_name() == "sqlite":
        return None
    return create_engine(
        url,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
        connect_args={"options": "-c plan_cache_mode=force_generic_plan"},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transactions off (_sqlite_begin starts them instead).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL lets readers run while one writer commits; foreign keys make deletes cascade.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted content is overwritten with zeros, not left in free pages; set explicitly
        # because builds differ in their default.
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


def _sqlite_begin(connection: Any) -> None:
    """Each SQLAlchemy transaction on SQLite starts with BEGIN (SQLAlchemy's documented recipe
    for pysqlite). Left to the driver, a transaction began only at its first write, so what
    it had read was not part of it: add_enrollment read a collection still marked
    ``training``, a training's record cleared the mark meanwhile, and the write, finding the
    mark already set in what it had read, left it cleared. The collection stayed stale with no
    job queued (eval ident hung in about one run of six). A transaction that writes
    (``WRITES``) takes the write lock at once (IMMEDIATE), waiting up to the busy timeout;
    one that only reads holds a snapshot (deferred) and blocks nobody."""
    writes = connection.get_execution_options().get(WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _private_folder(folder: Path) -> None:
    """Create the folder 0700 (whatever the umask); an existing folder is left as it is."""
    if folder.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(stat.S_IRWXU)


def _private_sqlite_files(path: Path) -> None:
    """The database file created 0600 before SQLite opens it, so that the -wal and -shm files
    SQLite derives from it are 0600 too; files from older versions (0644) are tightened."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, stat.S_IRUSR | stat.S_IWUSR)
    os.close(descriptor)
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists() and stat.S_IMODE(side.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
            side.chmod(stat.S_IRUSR | stat.S_IWUSR)
