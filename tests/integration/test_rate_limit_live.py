"""Two API processes on one SQLite file share one rate limit: over real HTTP, no models loaded."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from facegate.config import Settings
from facegate.service.keys import create_key
from tests.integration.conftest import start_server, wait_until

LIMIT = 5
EXTRA = 7


def _outside_a_window_boundary(margin_s: float = 10.0) -> None:
    """Windows are clock minutes: wait for the next one if this one ends within the test."""
    left = 60 - time.time() % 60
    if left < margin_s:
        time.sleep(left + 0.2)


def test_two_processes_admit_the_limit_between_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = create_key(Settings(data_dir=data_dir), "shared")  # also migrates the store
    env = {
        "FACEGATE_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "FACEGATE_WARM_UP_ON_START": "false",
    }
    servers = [start_server(data_dir, tmp_path / f"server{i}.log", **env) for i in range(2)]
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
