"""Two API processes on one store share one rate limit: over real HTTP, no models loaded, on one
SQLite file and on one PostgreSQL database."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from facegate.service.keys import create_key
from tests.integration.conftest import SharedStore, start_server, wait_until

LIMIT = 5
EXTRA = 7


def _outside_a_window_boundary(margin_s: float = 10.0) -> None:
    """Windows are clock minutes: wait for the next one if this one ends within the test."""
    left = 60 - time.time() % 60
    if left < margin_s:
        time.sleep(left + 0.2)


def test_two_processes_admit_the_limit_between_them(
    tmp_path: Path, shared_store: SharedStore
) -> None:
    key = create_key(shared_store.settings, "shared")  # also migrates the store
    env = {
        **shared_store.env,
        "FACEGATE_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "FACEGATE_WARM_UP_ON_START": "false",
    }
    servers = [
        start_server(shared_store.data_dir, tmp_path / f"server{i}.log", **env) for i in range(2)
    ]
    try:
        for server in servers:
            wait_until(server, "/healthz", lambda r: r.status_code == 200)
        clients = [
            httpx.Client(base_url=f"{s.url}/v1", headers={"x-api-key": key.secret}, timeout=30)
            for s in servers
        ]
        _outside_a_window_boundary()
        answers = [clients[i % 2].get("/collection") for i in range(LIMIT + EXTRA)]
        for client in clients:
            client.close()
    finally:
        for server in servers:
            server.stop()
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == LIMIT, statuses
    assert statuses.count(429) == EXTRA, statuses
    # Both processes refused once the shared count was spent, each with its Retry-After.
    refused = [(i % 2, a) for i, a in enumerate(answers) if a.status_code == 429]
    assert {process for process, _ in refused} == {0, 1}
    for _, answer in refused:
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        assert answer.json()["success"] is False
    # The count lives in the shared store (every request counted, refused ones too), and on
    # PostgreSQL nothing fell back to a SQLite file of its own.
    store = shared_store.open()
    try:
        counted = store.rows("SELECT requests FROM rate_limits WHERE key_id = ?", key.key_id)
        assert counted == [(LIMIT + EXTRA,)]  # one window: the test kept clear of a boundary
    finally:
        store.dispose()
    if shared_store.backend == "postgresql":
        assert not (shared_store.data_dir / "facegate.db").exists()
