"""``facegate bench load``: N clients x T seconds of mixed requests against a server it starts.

A real ``facegate serve`` in a child process on 127.0.0.1 (defaults, rate limit off), a real
SQLite store in a temporary folder, real HTTP. The mix: face detection on a group photo,
1:1 match, 1:N identify, enrollment of one photo, and listing collections. Each client sends
one request after another; a 503 must carry a valid Retry-After, which the client then honours
(``--retry-after``, the default: what a well-behaved client does) or ignores (``--hammer``:
the worst case, each refusal retried at once).

Reported: successes per second, 503s (each checked for Retry-After), 5xx other than 503, the
p50/p99 latency of admitted requests (every answer but a 503), and the same mix from a single
client beside it. Bounded in time (``seconds``) and in count (``max_requests`` per run).

Faces come from images that packages ship (matplotlib's Grace Hopper, insightface's group
photo ``t1.jpg``), so nothing from a data folder is needed.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
import math
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from facegate.config import Settings
from facegate.eval.serve_process import ServeProcess, start_ready
from facegate.service.keys import create_key

REQUEST_TIMEOUT_S = 120
# Face centres (x, y) of the six people in t1.jpg; crops of 260 px around them are portraits.
GROUP_CENTRES = ((517, 337), (111, 328), (960, 130), (320, 205), (791, 406), (1179, 336))
# (kind, weight): the share of each kind of request in the mix.
MIX = (("facedetect", 3), ("match", 3), ("identify", 3), ("enroll", 1), ("collections", 1))


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"facegate bench: the sample faces come from the {package!r} package, which is not "
            "installed (make installs it)"
        )
    return Path(next(iter(spec.submodule_search_locations)), *parts)


@dataclass(frozen=True)
class Photos:
    grace: bytes  # one frontal face, JPEG
    group: bytes  # six faces, JPEG
    members: tuple[bytes, ...]  # a portrait of each of the six


def sample_photos() -> Photos:
    grace = _package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    group = _package_file("insightface", "data", "images", "t1.jpg")
    image = Image.open(group).convert("RGB")
    members = []
    for x, y in GROUP_CENTRES:
        crop = image.crop((max(0, x - 130), max(0, y - 130), x + 130, y + 130))
        buffer = io.BytesIO()
        crop.save(buffer, format="JPEG", quality=92)
        members.append(buffer.getvalue())
    return Photos(grace.read_bytes(), group.read_bytes(), tuple(members))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def start_server(root: Path, name: str, env: dict[str, str] | None = None) -> ServeProcess:
    """``facegate serve`` on a free port with the data folder ``root/data``; settings from a
    ``.env`` in its own working folder (the documented way)."""
    settings = {"FACEGATE_RATE_LIMIT_PER_MINUTE": "0", **(env or {})}
    return start_ready(root / "data", root / name, settings)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def wire(self, host: str, key: str) -> bytes:
        """The whole HTTP/1.1 request, encoded once: the clients share the machine with the
        server, so each request must cost them as little as possible."""
        body = self.content or b""
        headers = {"Host": host, "x-api-key": key, **self.headers}
        if self.json is not None:
            body = json.dumps(self.json).encode()
            headers["Content-Type"] = "application/json"
        if self.method != "GET":
            headers["Content-Length"] = str(len(body))
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return f"{self.method} /v1{self.path} HTTP/1.1\r\n{head}\r\n".encode() + body


class Connection:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams (status, headers, sized body):
    a fraction of a general client's cost per request, so the load measures the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, wire: bytes) -> tuple[int, dict[str, str]]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        try:
            writer.write(wire)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    succeeded: Counter[str] = field(default_factory=Counter)  # 2xx answers by kind
    attempted: Counter[str] = field(default_factory=Counter)  # requests sent, by kind
    admitted_s: list[float] = field(default_factory=list)  # every answer but a 503
    admitted_by_kind: dict[str, list[float]] = field(default_factory=dict)
    refused_s: list[float] = field(default_factory=list)
    bad_retry_after: int = 0
    transport_errors: int = 0
    wall_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.transport_errors

    @property
    def successes(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)


def _requests(photos: Photos, enrollment: str, collection: str) -> dict[str, Request]:
    return {
        "facedetect": Request(
            "POST", "/facedetect", content=photos.group, headers={"content-type": "image/jpeg"}
        ),
        "match": Request("POST", "/match", json={"img": b64(photos.grace), "id": enrollment}),
        "identify": Request(
            "POST",
            "/identify",
            json={"img": b64(photos.members[0]), "collection_id": collection},
        ),
        "enroll": Request("POST", "/enroll", json={"img0": b64(photos.members[1])}),
        "collections": Request("GET", "/collection"),
    }


def _schedule() -> list[str]:
    return [kind for kind, weight in MIX for _ in range(weight)]


def prepare(url: str, key: str, photos: Photos) -> tuple[str, str]:
    """An enrollment to match against and a trained collection to identify in."""
    with httpx.Client(
        base_url=f"{url}/v1", headers={"x-api-key": key}, timeout=REQUEST_TIMEOUT_S
    ) as http:
        collection = http.post("/collection", json={"name": "load"}).json()["data"]["collection_id"]
        grace = http.post(
            "/enroll",
            json={"img0": b64(photos.grace), "name": "grace", "collection_id": collection},
        )
        enrollment = grace.json()["data"]["enrollment_id"]
        for i, member in enumerate(photos.members):
            http.post(
                "/enroll",
                json={"img0": b64(member), "name": f"member {i}", "collection_id": collection},
            ).raise_for_status()
        http.post("/train", json={"collection_id": collection}).raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            listed = http.get("/collection").json()["data"]
            if all(c.get("status") != "training" for c in listed):
                break
            time.sleep(0.2)
    return enrollment, collection


async def _client(
    url: str,
    wires: dict[str, bytes],
    offset: int,
    stop_at: float,
    budget: list[int],
    tally: Tally,
    honour_retry_after: bool,
) -> None:
    host, port = url.removeprefix("http://").split(":")
    connection = Connection(host, int(port))
    schedule = _schedule()
    i = offset
    try:
        while time.monotonic() < stop_at and budget[0] > 0:
            budget[0] -= 1
            kind = schedule[i % len(schedule)]
            wire = wires[kind]
            i += 1
            started = time.perf_counter()
            try:
                status, headers = await asyncio.wait_for(
                    connection.request(wire), REQUEST_TIMEOUT_S
                )
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
                tally.transport_errors += 1
                continue
            elapsed = time.perf_counter() - started
            tally.statuses[status] += 1
            tally.attempted[kind] += 1
            if 200 <= status < 300:
                tally.succeeded[kind] += 1
            if status != 503:
                tally.admitted_s.append(elapsed)
                tally.admitted_by_kind.setdefault(kind, []).append(elapsed)
                continue
            tally.refused_s.append(elapsed)
            retry_after = _retry_after(headers.get("retry-after"))
            if retry_after is None:
                tally.bad_retry_after += 1
            elif honour_retry_after:
                await asyncio.sleep(min(retry_after, max(0.0, stop_at - time.monotonic())))
    finally:
        connection.close()


def _retry_after(value: str | None) -> int | None:
    if value is None or not value.isdigit() or int(value) < 1:
        return None
    return int(value)


async def _run_clients(
    url: str,
    key: str,
    requests: dict[str, Request],
    clients: int,
    seconds: float,
    max_requests: int,
    honour_retry_after: bool,
) -> Tally:
    tally = Tally()
    budget = [max_requests]
    host = url.removeprefix("http://")
    wires = {kind: request.wire(host, key) for kind, request in requests.items()}
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(
        *(
            _client(url, wires, n, stop_at, budget, tally, honour_retry_after)
            for n in range(clients)
        )
    )
    tally.wall_s = time.monotonic() - started
    return tally


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def describe_kinds(tally: Tally) -> str:
    """Per kind of request: successes per second, the share of its requests that succeeded
    (admission's fairness across kinds) and the p99 of its admitted requests."""
    parts = []
    for kind, _ in MIX:
        sent = tally.attempted[kind]
        if not sent:
            continue
        done = tally.succeeded[kind]
        p99 = _percentile(tally.admitted_by_kind.get(kind, []), 0.99)
        parts.append(
            f"{kind} {done / tally.wall_s:.1f}/s, {100 * done / sent:.0f} % of {sent} succeeded, "
            f"admitted p99 {1000 * p99:.0f} ms"
        )
    return "; ".join(parts)


def describe(label: str, tally: Tally) -> str:
    others = {s: n for s, n in sorted(tally.statuses.items()) if not 200 <= s < 300 and s != 503}
    return (
        f"{label}: {tally.total} requests in {tally.wall_s:.1f} s; "
        f"{tally.successes / tally.wall_s:.1f} successes/s ("
        + ", ".join(f"{k} {n / tally.wall_s:.1f}" for k, n in sorted(tally.succeeded.items()))
        + "); "
        f"503: {tally.statuses[503]} (without a valid Retry-After: {tally.bad_retry_after}); "
        f"5xx other than 503: {tally.server_errors}; other statuses: {others or 'none'}; "
        f"transport errors: {tally.transport_errors}; admitted p50 "
        f"{1000 * _percentile(tally.admitted_s, 0.5):.0f} ms, p99 "
        f"{1000 * _percentile(tally.admitted_s, 0.99):.0f} ms"
        + (
            f"; 503 p50 {1000 * statistics.median(tally.refused_s):.0f} ms"
            if tally.refused_s
            else ""
        )
    )


def run_load_bench(
    *,
    clients: int = 50,
    seconds: float = 60.0,
    max_requests: int = 100_000,
    single_seconds: float = 20.0,
    honour_retry_after: bool = True,
    env: dict[str, str] | None = None,
    report: Callable[[str], None] = print,
) -> tuple[Tally, Tally]:
    """(single client, ``clients`` clients); prints both."""
    photos = sample_photos()
    with tempfile.TemporaryDirectory(prefix="facegate-load-") as folder:
        root = Path(folder)
        key = create_key(Settings(data_dir=root / "data"), "load").secret
        server = start_server(root, "server", env)
        try:
            enrollment, collection = prepare(server.url, key, photos)
            requests = _requests(photos, enrollment, collection)
            policy = "honoured" if honour_retry_after else "ignored (retried at once)"
            report(
                f"facegate bench load: mix {dict(MIX)}; Retry-After {policy}; server defaults"
                + (f" with {env}" if env else "")
            )
            single = asyncio.run(
                _run_clients(
                    server.url, key, requests, 1, single_seconds, max_requests, honour_retry_after
                )
            )
            report(describe("1 client", single))
            report(f"  by kind: {describe_kinds(single)}")
            many = asyncio.run(
                _run_clients(
                    server.url, key, requests, clients, seconds, max_requests, honour_retry_after
                )
            )
            report(describe(f"{clients} clients", many))
            report(f"  by kind: {describe_kinds(many)}")
        finally:
            server.stop()
    return single, many
