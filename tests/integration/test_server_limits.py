"""Connection-level limits of ``facegate serve`` over real sockets: idle and slow-header
connections are closed, slow bodies get 408, connections over the cap get a 503 with
Retry-After, all in the envelope. The models are never loaded (warm-up off): none is needed."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from facegate.config import Settings
from facegate.service.keys import create_key
from tests.integration.conftest import start_server, wait_until

pytestmark = pytest.mark.integration

HEADER_TIMEOUT_S = 2.5
BODY_TIMEOUT_S = 1.5
MAX_CONNECTIONS = 4


@dataclass(frozen=True)
class Server:
    url: str
    host: str
    port: int
    key: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limits")
    data_dir = root / "data"
    key = create_key(Settings(data_dir=data_dir), "limits").secret
    process = start_server(
        data_dir,
        root / "server.log",
        FACEGATE_WARM_UP_ON_START="false",
        FACEGATE_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        FACEGATE_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
        FACEGATE_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    try:
        wait_until(process, "/healthz", lambda r: r.status_code == 200)
        host, port = process.url.removeprefix("http://").split(":")
        yield Server(process.url, host, int(port), key)
    finally:
        process.stop()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _envelope(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, json.loads(body)


def test_an_idle_connection_is_closed(server: Server) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_headers_sent_too_slowly_get_408_and_the_connection_ends(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        raw = _read_all(sock)
        assert time.monotonic() - started < HEADER_TIMEOUT_S + 3
    status, headers, body = _envelope(raw)
    assert status == 408 and headers["connection"] == "close"
    assert body["success"] is False and body["data"] is None and "headers" in str(body["message"])


def test_a_body_sent_too_slowly_gets_408(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v1/collection HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"x-api-key: " + server.key.encode() + b'\r\nContent-Length: 100\r\n\r\n{"na'
        )
        started = time.monotonic()
        raw = _read_all(sock)
        assert time.monotonic() - started < BODY_TIMEOUT_S + 3
    status, headers, body = _envelope(raw)
    assert status == 408 and headers["connection"] == "close"
    assert body["success"] is False and "FACEGATE_BODY_TIMEOUT_S" in str(body["message"])
    listed = httpx.get(f"{server.url}/v1/collection", headers={"x-api-key": server.key})
    assert listed.json()["data"] == []


def test_connections_over_the_cap_get_503_with_retry_after(server: Server) -> None:
    idle = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # accepted by the server before the next one
        refused = httpx.get(f"{server.url}/healthz", timeout=10)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json() == {
            "data": None,
            "message": refused.json()["message"],
            "success": False,
        }
        assert "connections" in refused.json()["message"]
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_connections_far_over_the_cap_are_dropped_and_over_cap_ones_soon_closed(
    server: Server,
) -> None:
    held = [_connect(server) for _ in range(2 * MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        with _connect(server) as extra:
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = _read_all(extra)
            except (ConnectionResetError, BrokenPipeError):
                answer = b""
        assert answer == b"", "dropped without an answer"
        # An idle connection over the cap is given a second, not the full header timeout.
        assert _read_all(held[-1]) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT_S
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_a_kept_alive_connection_serves_several_requests(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers={"x-api-key": server.key}) as client:
        for _ in range(3):
            assert client.get("/v1/collection").status_code == 200
            time.sleep(0.3)


def test_a_trailing_slash_with_a_foreign_host_is_not_redirected(server: Server) -> None:
    response = httpx.get(
        f"{server.url}/v1/collection/",
        headers={"x-api-key": server.key, "host": "evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 200 and "location" not in response.headers
    assert response.json()["success"] is True


def test_a_non_ascii_request_id_over_http(server: Server) -> None:
    health = httpx.get(f"{server.url}/healthz", headers={"x-request-id": b"\xe9"})
    assert health.status_code == 200 and len(health.headers["x-request-id"]) == 32
