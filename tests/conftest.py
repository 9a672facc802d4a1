"""Fixtures for every test: nothing of the machine's facegate configuration leaks in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from facegate.config import Settings
from tests.postgres import PostgresServer


@pytest.fixture(autouse=True)
def hermetic_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``FACEGATE_*`` variable and no ``.env`` file reach a test's Settings (or the servers
    the integration tests start, which inherit this environment)."""
    for name in list(os.environ):
        if name.upper().startswith("FACEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    yield


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL for the whole session, started only if a test asks for it. The
    environment variable pgserver needs is set for the session and restored after."""
    root = tmp_path_factory.mktemp("postgres")
    runtime = root / "runtime"
    runtime.mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as patch:
        # pgserver asks platformdirs for the user's runtime folder when it is imported (its lock
        # file, and the socket when the data path is too long for one). Without XDG_RUNTIME_DIR
        # that warns, and warnings are errors here: a private folder instead.
        patch.setenv("XDG_RUNTIME_DIR", str(runtime))
        server = PostgresServer(root / "pgdata")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """An empty database of its own on the session's PostgreSQL, as a SQLAlchemy URL."""
    return postgres_server.new_database()
