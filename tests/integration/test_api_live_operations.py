"""Operations on the live server: health, readiness, metrics, docs, logs, start-up and shutdown."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from facegate.config import Settings
from facegate.service.keys import list_keys
from tests.integration.conftest import LiveServer, start_server, wait_until

pytestmark = pytest.mark.integration


def test_health_readiness_docs_and_metrics(live: LiveServer) -> None:
    assert httpx.get(f"{live.base_url}/healthz").json()["data"] == {"status": "alive"}
    assert httpx.get(f"{live.base_url}/readyz").json()["data"] == {"status": "ready"}
    assert "swagger" in httpx.get(f"{live.base_url}/docs").text.lower()
    spec = httpx.get(f"{live.base_url}/openapi.json").json()
    assert {"/v1/enroll", "/v1/identify", "/v1/collection", "/v1/match"} <= set(spec["paths"])
    live.client("alice").get("/collection")
    metrics = httpx.get(f"{live.base_url}/metrics").text
    assert 'route="/v1/collection",status="200"' in metrics
    assert "facegate_http_request_duration_seconds_bucket" in metrics


def _traced_requests(live: LiveServer, request_id: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in live.log_text().splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("logger") == "facegate.request"]
    return [entry for entry in requests if entry["request_id"] == request_id]


def test_request_log_lines_are_json(live: LiveServer) -> None:
    live.client("alice").get("/collection", headers={"x-request-id": "trace-me-1"})
    # The line is written once the response has gone out, so it may trail the client a little.
    deadline = time.monotonic() + 10
    while not (traced := _traced_requests(live, "trace-me-1")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(traced) == 1
    assert traced[0]["status"] == 200 and traced[0]["route"] == "/v1/collection"
    assert isinstance(traced[0]["duration_ms"], float)


def test_first_start_without_keys_says_how_to_make_one(tmp_path: Path) -> None:
    """A bare data folder: the store is migrated, the operator told what to do, no default key;
    models are not loaded (warm-up off) so readiness honestly answers 503."""
    data_dir = tmp_path / "fresh"
    log_path = tmp_path / "server.log"
    server = start_server(data_dir, log_path, FACEGATE_WARM_UP_ON_START="false")
    try:
        wait_until(server, "/healthz", lambda r: r.status_code == 200)
        readiness = httpx.get(f"{server.url}/readyz")
        assert readiness.status_code == 503 and "models" in readiness.json()["message"]
        refused = httpx.get(f"{server.url}/v1/collection", headers={"x-api-key": "anything"})
        assert refused.status_code == 401
    finally:
        server.stop()
    log = log_path.read_text()
    assert "no API key exists yet" in log and "facegate keys create NAME --data-dir" in log
    assert list_keys(Settings(data_dir=data_dir)) == []
