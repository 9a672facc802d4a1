"""One live facegate server per test session and backend: ``facegate serve`` in a subprocess on
a free port, with a real SQLite file in a temporary data folder or a database of its own on the
session's real PostgreSQL (tests/postgres.py), the real models, real HTTP with httpx.

A module runs on SQLite unless it sets ``LIVE_BACKENDS = BOTH_BACKENDS``: then every test in it
runs once per backend (ids ``sqlite`` and ``postgresql``), each on its backend's one server.

Keys are made the operator's way (``facegate.service.keys``) before the server starts: two
tenants and one revoked key. Rate limiting is off. Helpers here also read the store directly
(read-only, through SQLAlchemy: the same on both backends) so tests can prove that a refused
request changed nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import pytest

from facegate.config import Settings
from facegate.eval.serve_process import ServeProcess
from facegate.service.keys import create_key, revoke_key
from tests.factories import (
    astronaut_rgb,
    augmented,
    b64,
    encode,
    grace_hopper_rgb,
    group_member_rgb,
)
from tests.postgres import PostgresServer
from tests.store import Store

STARTUP_TIMEOUT_S = 300

Backend = Literal["sqlite", "postgresql"]
BOTH_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")


@dataclass
class LiveServer:
    base_url: str
    data_dir: Path
    log_path: Path
    keys: dict[str, str]  # name → secret: "alice", "bob", "revoked"
    store: Store  # the server's database, read-only
    pid: int = 0  # the server process, for memory figures
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return self.store.backend

    def client(self, key: str | None = "alice", **headers: str) -> httpx.Client:
        """A client for /v1 with the named key's x-api-key header (None: no key at all)."""
        all_headers = dict(headers)
        if key is not None:
            all_headers["x-api-key"] = self.keys.get(key, key)
        client = httpx.Client(base_url=f"{self.base_url}/v1", headers=all_headers, timeout=120)
        self.clients.append(client)
        return client

    def store_fingerprint(self) -> str:
        """A digest of every row of every table, read without writing."""
        self.wait_for_training()
        return self.store.fingerprint()

    def scalar(self, sql: str, *params: object) -> object:
        """One value from a read-only query on the server's store (``?`` placeholders)."""
        return self.store.scalar(sql, *params)

    def wait_for_training(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while self.store.scalar("SELECT count(*) FROM collections WHERE training") != 0:
            assert time.monotonic() < deadline, "training never finished"
            time.sleep(0.05)

    def memory_mb(self, field: str = "VmRSS") -> float:
        """The server's resident memory now (VmRSS) or at its peak (VmHWM), from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no {field} in /proc/{self.pid}/status")

    def reset_peak_memory(self) -> None:
        """Start VmHWM again from the current RSS (Linux's clear_refs)."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def envelope_data(response: httpx.Response) -> Any:
    """The ``data`` of a 200 answer (the test fails with the body otherwise)."""
    assert response.status_code == 200, response.text
    return response.json()["data"]


def wait_ready(client: httpx.Client, collection_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll GET /v1/collection (``client`` on /v1) until the collection is ``ready``."""
    deadline = time.monotonic() + timeout_s
    while True:
        entry: dict[str, Any] = next(
            c for c in envelope_data(client.get("/collection")) if c["id"] == collection_id
        )
        if entry["status"] == "ready":
            return entry
        assert time.monotonic() < deadline, f"still {entry['status']}"
        time.sleep(0.1)


def start_server(data_dir: Path, log_path: Path, **env: str) -> ServeProcess:
    return ServeProcess(
        data_dir, log_path, env={**os.environ, "FACEGATE_RATE_LIMIT_PER_MINUTE": "0", **env}
    )


def wait_until(server: ServeProcess, path: str, ready: Callable[[httpx.Response], bool]) -> None:
    try:
        server.wait_until(path, ready, STARTUP_TIMEOUT_S)
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _live_server(root: Path, database_url: str | None = None) -> Iterator[LiveServer]:
    """A started server with its keys, stopped cleanly after (asserted); ``database_url`` None:
    SQLite in the data folder, the default."""
    data_dir = root / "data"
    settings = Settings(data_dir=data_dir, database_url=database_url)
    keys = {name: create_key(settings, name) for name in ("alice", "bob", "revoked")}
    revoke_key(settings, keys["revoked"].key_id)
    log_path = root / "server.log"
    env = {} if database_url is None else {"FACEGATE_DATABASE_URL": database_url}
    store = Store(settings.sqlalchemy_url)
    process = start_server(data_dir, log_path, **env)
    try:
        wait_until(process, "/readyz", lambda r: r.status_code == 200)
        server = LiveServer(
            process.url,
            data_dir,
            log_path,
            {n: k.secret for n, k in keys.items()},
            store,
            pid=process.process.pid,
        )
        yield server
        for client in server.clients:
            client.close()
    finally:
        exit_code = process.stop()
        store.dispose()
    # uvicorn re-raises the SIGTERM it handled once the graceful shutdown is complete.
    log_tail = log_path.read_text()[-3000:]
    assert exit_code in (0, -signal.SIGTERM), f"unclean shutdown ({exit_code}):\n{log_tail}"
    assert "Application shutdown complete" in log_tail


@pytest.fixture(scope="session")
def live_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from _live_server(tmp_path_factory.mktemp("live"))


@pytest.fixture(scope="session")
def live_postgresql(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[LiveServer]:
    yield from _live_server(
        tmp_path_factory.mktemp("live-pg"), postgres_server.new_database("live")
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Modules with ``LIVE_BACKENDS`` run each test that uses ``live`` once per backend."""
    backends = getattr(metafunc.module, "LIVE_BACKENDS", None)
    if backends and "live" in metafunc.fixturenames:
        metafunc.parametrize("live", backends, indirect=True, scope="session", ids=str)


@pytest.fixture(scope="session")
def live(request: pytest.FixtureRequest) -> LiveServer:
    """The session's server on the backend this test runs on (SQLite unless parametrized): one
    per backend, started at first use and shared by every module after."""
    backend: Backend = getattr(request, "param", "sqlite")
    server = request.getfixturevalue(f"live_{backend}")
    assert isinstance(server, LiveServer)
    return server


@dataclass(frozen=True)
class SharedStore:
    """One store for several servers (the two-process tests): a SQLite file in ``data_dir`` or
    a PostgreSQL database of its own. Servers get :attr:`env` (empty for SQLite: the default
    file in their data folder) and the same ``data_dir``."""

    backend: Backend
    data_dir: Path
    url: str

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=self.url)

    @property
    def env(self) -> dict[str, str]:
        return {} if self.backend == "sqlite" else {"FACEGATE_DATABASE_URL": self.url}

    def open(self, *, read_only: bool = True) -> Store:
        return Store(self.url, read_only=read_only)


@pytest.fixture(params=BOTH_BACKENDS)
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> SharedStore:
    """An empty store on each backend in turn (ids ``sqlite`` and ``postgresql``)."""
    backend: Backend = request.param
    data_dir = tmp_path / "data"
    if backend == "sqlite":
        return SharedStore(backend, data_dir, Settings(data_dir=data_dir).sqlalchemy_url)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return SharedStore(backend, data_dir, server.new_database("shared"))


class Photos:
    """Package-shipped faces, encoded once per session (each encode is a real JPEG)."""

    @staticmethod
    @cache
    def grace(variant: int = 0) -> bytes:
        return encode(augmented(grace_hopper_rgb(), variant))

    @staticmethod
    @cache
    def eileen(variant: int = 0) -> bytes:
        return encode(augmented(astronaut_rgb(), variant))

    @staticmethod
    @cache
    def member(index: int) -> bytes:
        return encode(group_member_rgb(index))

    @staticmethod
    @cache
    def side_by_side() -> bytes:
        """Grace and Eileen in one picture: two faces for all_faces."""
        left, right = augmented(grace_hopper_rgb(), 1), augmented(astronaut_rgb(), 1)
        height = min(left.shape[0], right.shape[0])
        return encode(np.ascontiguousarray(np.hstack([left[:height], right[:height]])))

    @staticmethod
    @cache
    def no_face() -> bytes:
        gradient = np.linspace(0, 255, 240 * 320 * 3).reshape(240, 320, 3)
        return encode(gradient.astype(np.uint8))

    @staticmethod
    def b64(data: bytes) -> str:
        return b64(data)


@pytest.fixture(scope="session")
def photos() -> type[Photos]:
    return Photos
