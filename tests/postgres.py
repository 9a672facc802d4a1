"""A real PostgreSQL for the tests: one pgserver (PostgreSQL 16 with pgvector) per test session,
in a temporary folder, reached over its Unix socket; each test that needs one gets a database of
its own, so tests stay independent of each other's rows.

pgserver is a pip package: nothing is installed on the machine, and it runs as root too (it
starts PostgreSQL as a ``pgserver`` system user it creates).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine


class PostgresServer:
    """A started server; :meth:`new_database` makes an empty database and gives its URL."""

    def __init__(self, pgdata: Path) -> None:
        """Starts PostgreSQL on ``pgdata`` (created); XDG_RUNTIME_DIR must be set (see conftest)."""
        # Imported here: only sessions that need PostgreSQL pay for it.
        from pgserver.postgres_server import get_server

        self._server: Any = get_server(pgdata, cleanup_mode="stop")
        # postgresql://postgres:@/postgres?host=SOCKET_FOLDER
        self.host = parse_qs(urlsplit(self._server.get_uri()).query)["host"][0]
        self._admin: Engine = create_engine(
            self.url("postgres"), isolation_level="AUTOCOMMIT", pool_size=1
        )
        self._names = itertools.count(1)

    def url(self, database: str) -> str:
        """SQLAlchemy's URL of one database on this server, with facegate's driver (psycopg 3)."""
        return f"postgresql+psycopg://postgres:@/{database}?host={self.host}"

    def new_database(self, prefix: str = "facegate") -> str:
        """An empty database (CREATE DATABASE outside a transaction, as PostgreSQL requires)."""
        name = f"{prefix}_{next(self._names)}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def vector_available(self) -> bool:
        """Whether pgvector can be created here (checked, not created: the schema owns that)."""
        with self._admin.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
            ).scalar_one()
        return bool(found)

    def stop(self) -> None:
        self._admin.dispose()
        self._server.cleanup()
