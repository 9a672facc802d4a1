"""``facegate bench DATA --http``: the server's /v1/match throughput with 1, 2 and 4 clients.

A real ``facegate serve`` in a child process with its default threading (one inference worker
per core, one intra-op thread each: cores are never oversubscribed), a real SQLite store in a
temporary folder, real HTTP. One person is enrolled from an LFW image; every request matches
another 250x250 LFW image of the same person. Run once per TTA mode.

The peer has no server: its figure is face_recognition's whole match path run back to back in
this process, one core, and the ideal of one such process per core.
"""

from __future__ import annotations

import base64
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from numpy.typing import NDArray

from facegate.config import TTA, Settings
from facegate.eval.serve_process import ServeProcess, start_ready
from facegate.eval.threads import run_timed
from facegate.service.inference import resolve_workers
from facegate.service.keys import create_key

PERSON = "George_W_Bush"
CLIENTS = (1, 2, 4)


def _lfw_images(data_dir: Path, count: int) -> list[bytes]:
    folder = data_dir / "lfw" / "lfw-deepfunneled" / PERSON
    paths = sorted(folder.glob("*.jpg"))[:count]
    if len(paths) < 2:
        raise SystemExit(f"{data_dir}: the bench needs LFW photos of {PERSON} in {folder}")
    return [path.read_bytes() for path in paths]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _start_server(data_dir: Path, tta: TTA) -> ServeProcess:
    settings = {"FACEGATE_TTA": tta, "FACEGATE_RATE_LIMIT_PER_MINUTE": "0"}
    return start_ready(data_dir, data_dir / f"server-{tta}", settings)


def _throughput(
    url: str, key: str, enrollment: str, queries: list[bytes], clients: int, per_client: int
) -> tuple[float, float]:
    """(matches per second over all clients, median latency in ms)."""
    bodies = [{"id": enrollment, "img": _b64(q)} for q in queries]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=f"{url}/v1", headers={"x-api-key": key}, timeout=120) as http:
            for i in range(per_client):
                start = time.perf_counter()
                response = http.post("/match", json=bodies[(offset + i) % len(bodies)])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")

    wall = run_timed([threading.Thread(target=client, args=(n,)) for n in range(clients)])
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    return clients * per_client / wall, 1000 * statistics.median(latencies)


def _peer_rate(queries: list[bytes], reference: bytes, repeats: int) -> float:
    """face_recognition's whole match path, back to back on one core: matches per second."""
    from PIL import Image

    from facegate.eval.peer import load_face_recognition

    face_recognition = load_face_recognition()

    def rgb(data: bytes) -> NDArray[np.uint8]:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    known = face_recognition.face_encodings(rgb(reference))[0]
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        encodings = face_recognition.face_encodings(rgb(queries[i % len(queries)]))
        face_recognition.face_distance([known], encodings[0])
        samples.append(time.perf_counter() - start)
    return 1 / statistics.median(samples)


def run_http_bench(
    data_dir: Path,
    *,
    requests_per_client: int = 20,
    modes: tuple[TTA, ...] = ("none", "flip"),
    clients: tuple[int, ...] = CLIENTS,
) -> int:
    images = _lfw_images(data_dir, 11)
    reference, queries = images[0], images[1:]
    cores = resolve_workers(0)
    print(
        f"facegate bench --http: /v1/match over HTTP, {requests_per_client} requests per client; "
        f"server defaults on {cores} cores: {cores} inference workers x 1 intra-op thread\n"
    )
    peer = _peer_rate(queries, reference, repeats=requests_per_client)
    print(
        f"face_recognition 1.3.0, in process: {peer:5.1f} matches/s on one core "
        f"(ideal with one process per core: {cores * peer:5.1f}/s)"
    )
    with tempfile.TemporaryDirectory(prefix="facegate-bench-") as folder:
        root = Path(folder)
        key = create_key(Settings(data_dir=root), "bench").secret
        for tta in modes:
            server = _start_server(root, tta)
            try:
                enrolled = httpx.post(
                    f"{server.url}/v1/enroll",
                    headers={"x-api-key": key},
                    json={"name": PERSON, "img0": _b64(reference)},
                    timeout=120,
                ).json()
                enrollment = enrolled["data"]["enrollment_id"]
                _throughput(server.url, key, enrollment, queries, 1, 2)  # warm-up
                for count in clients:
                    rate, latency = _throughput(
                        server.url, key, enrollment, queries, count, requests_per_client
                    )
                    print(
                        f"facegate tta={tta:<5} {count} client(s): {rate:5.1f} matches/s "
                        f"({rate / peer:4.1f}x the peer's one core), median latency "
                        f"{latency:6.1f} ms"
                    )
            finally:
                server.stop()
    return 0
