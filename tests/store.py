"""Direct access to a server's store, on SQLite or PostgreSQL alike, for tests that prove what a
request did (or did not) write. Read-only unless asked otherwise: the database refuses writes,
so a helper can never be what changed the store.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool


class Store:
    def __init__(self, url: str, *, read_only: bool = True) -> None:
        self.url = url
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        connect_args: dict[str, Any] = {}
        if self.backend == "sqlite" and read_only:
            parsed = parsed.set(database=f"file:{parsed.database}?mode=ro").update_query_dict(
                {"uri": "true"}
            )
        elif self.backend == "postgresql" and read_only:
            connect_args["options"] = "-c default_transaction_read_only=on"
        # No pool: a connection held between calls would be a reader that SQLite's checkpoint
        # after a delete waits for (and the servers' tests check that the log is emptied).
        self.engine: Engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        """The rows of one statement; ``?`` placeholders, in order, whatever the backend."""
        with self.engine.begin() as connection:
            result = connection.execute(*_bound(sql, params))
            return [tuple(row) for row in result] if result.returns_rows else []

    def scalar(self, sql: str, *params: object) -> Any:
        rows = self.rows(sql, *params)
        return rows[0][0] if rows else None

    def tables(self) -> list[str]:
        with self.engine.connect() as connection:
            return sorted(inspect(connection).get_table_names())

    def fingerprint(self) -> str:
        """A digest of every row of every table (Alembic's version table included)."""
        digest = hashlib.sha256()
        with self.engine.connect() as connection:
            for table in sorted(inspect(connection).get_table_names()):
                digest.update(table.encode())
                rows = connection.execute(text(f'SELECT * FROM "{table}"')).all()
                for row in sorted((tuple(r) for r in rows), key=repr):
                    digest.update(repr(row).encode())
        return digest.hexdigest()

    def dispose(self) -> None:
        self.engine.dispose()


def _bound(sql: str, params: tuple[object, ...]) -> tuple[Any, dict[str, object]]:
    """``?`` placeholders (the sqlite3 module's) as SQLAlchemy's named ones, for both backends."""
    pieces = sql.split("?")
    if len(pieces) - 1 != len(params):
        raise ValueError(f"{len(pieces) - 1} placeholders, {len(params)} parameters: {sql}")
    statement = "".join(f"{piece}:p{i}" for i, piece in enumerate(pieces[:-1])) + pieces[-1]
    return text(statement), {f"p{i}": value for i, value in enumerate(params)}
