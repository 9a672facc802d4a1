"""``facegate bench faults``: kill -9 the server mid-write, restart it, check the store.

Each round, against a real ``facegate serve`` on 127.0.0.1 with a real SQLite store:

1. An enrollment burst: several clients enroll portraits into one collection as fast as they
   can; the server is killed with SIGKILL while they do. Every enrollment whose 200 answer
   reached a client (an acknowledged write) is recorded.
2. Training: ``POST /v1/train`` on that collection, SIGKILL right after it is acknowledged (the
   job is then queued or running: the store says which).
3. Restart; the checks: every acknowledged enrollment is there with its embedding and its
   membership (in the store and over the API); no half-written rows (an enrollment without
   embeddings, an embedding, membership or snapshot row pointing at nothing); no collection
   left ``training`` once the restarted server has resumed the interrupted jobs.

The data folder is kept across rounds, so later rounds kill a server with a larger store.
"""

from __future__ import annotations

import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from facegate.config import Settings
from facegate.eval.load_bench import REQUEST_TIMEOUT_S, Photos, b64, sample_photos, start_server
from facegate.eval.serve_process import ServeProcess
from facegate.service.keys import create_key

BURST_CLIENTS = 4
# The kill comes this long into the burst (seconds, drawn per round): after some writes were
# acknowledged, while others are in flight.
KILL_AFTER_S = (1.5, 4.0)
RESUME_TIMEOUT_S = 60

# Rows that point at nothing, or an enrollment that has nothing: each count must be 0.
HALF_WRITTEN = {
    "enrollments without embeddings": "SELECT count(*) FROM enrollments e WHERE NOT EXISTS "
    "(SELECT 1 FROM embeddings m WHERE m.enrollment_id = e.id)",
    "embeddings without an enrollment": "SELECT count(*) FROM embeddings m WHERE NOT EXISTS "
    "(SELECT 1 FROM enrollments e WHERE e.id = m.enrollment_id)",
    "memberships of a missing enrollment or collection": "SELECT count(*) FROM "
    "collection_members c WHERE NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.id = "
    "c.enrollment_id) OR NOT EXISTS (SELECT 1 FROM collections k WHERE k.id = c.collection_id)",
    "snapshots of a revision the collection never reached": "SELECT count(*) FROM collections "
    "WHERE trained_revision > revision OR trained_watermark > (SELECT coalesce(max(seq), 0) "
    "FROM sqlite_sequence WHERE name = 'embeddings')",
    "memberships of a revision the collection never reached": "SELECT count(*) FROM "
    "collection_members c JOIN collections k ON k.id = c.collection_id "
    "WHERE c.added_revision > k.revision",
}


@dataclass
class RoundResult:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    half_written: dict[str, int] = field(default_factory=dict)
    killed_while_training: bool = False
    left_training: int = 0

    @property
    def ok(self) -> bool:
        return not self.lost and not any(self.half_written.values()) and not self.left_training


def _query(database: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return connection.execute(sql, params).fetchall()


def _count(database: Path, sql: str) -> int:
    value = _query(database, sql)[0][0]
    assert isinstance(value, int)
    return value


def _burst(
    server: ServeProcess, key: str, photos: Photos, collection: str, stop: threading.Event
) -> list[str]:
    """Enroll until ``stop`` or the server dies; the ids whose 200 answer arrived."""
    acknowledged: list[str] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(
            base_url=f"{server.url}/v1", headers={"x-api-key": key}, timeout=REQUEST_TIMEOUT_S
        ) as http:
            i = offset
            # Bounded in count as well as by the kill.
            while not stop.is_set() and i < offset + 10_000:
                portrait = photos.members[i % len(photos.members)]
                i += 1
                body = {"img0": b64(portrait), "collection_id": collection, "name": f"p{i}"}
                try:
                    answer = http.post("/enroll", json=body)
                except httpx.TransportError:
                    return  # killed
                if answer.status_code == 200:
                    with lock:
                        acknowledged.append(answer.json()["data"]["enrollment_id"])

    threads = [threading.Thread(target=client, args=(n * 1000,)) for n in range(BURST_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S)
    return acknowledged


def _kill(server: ServeProcess) -> None:
    server.process.kill()  # SIGKILL: no shutdown, no flush, no checkpoint
    server.process.wait()


def fault_round(
    root: Path, key: str, collection: str, photos: Photos, number: int, rng: random.Random
) -> RoundResult:
    result = RoundResult()
    database = root / "data" / "facegate.db"
    server = start_server(root, f"round{number}-burst")
    stop = threading.Event()
    try:

        def kill_now() -> None:
            _kill(server)
            stop.set()

        timer = threading.Timer(rng.uniform(*KILL_AFTER_S), kill_now)
        timer.start()
        acknowledged = _burst(server, key, photos, collection, stop)
        timer.join()
    finally:
        stop.set()
        if server.process.poll() is None:
            _kill(server)
    result.acknowledged = len(acknowledged)

    server = start_server(root, f"round{number}-train")
    try:
        trained = httpx.post(
            f"{server.url}/v1/train",
            headers={"x-api-key": key},
            json={"collection_id": collection},
            timeout=REQUEST_TIMEOUT_S,
        )
        _kill(server)
        trained.raise_for_status()
    finally:
        if server.process.poll() is None:
            _kill(server)
    result.killed_while_training = bool(
        _count(database, "SELECT count(*) FROM collections WHERE training")
    )

    server = start_server(root, f"round{number}-check")
    try:
        present = {row[0] for row in _query(database, "SELECT id FROM enrollments")}
        members = {
            row[0]
            for row in _query(
                database,
                "SELECT enrollment_id FROM collection_members WHERE collection_id = ?",
                collection,
            )
        }
        listed = httpx.get(
            f"{server.url}/v1/collection", headers={"x-api-key": key}, timeout=REQUEST_TIMEOUT_S
        ).json()["data"]
        over_api = {e for c in listed if c["id"] == collection for e in c["enrollments"]}
        result.lost = [e for e in acknowledged if not {e} <= present & members & over_api]
        result.half_written = {name: _count(database, sql) for name, sql in HALF_WRITTEN.items()}
        deadline = time.monotonic() + RESUME_TIMEOUT_S
        while True:
            result.left_training = _count(
                database, "SELECT count(*) FROM collections WHERE training"
            )
            if not result.left_training or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        server.stop()
    return result


def run_fault_rounds(
    rounds: int, root: Path, report: Callable[[str], None] = print, seed: int = 12
) -> list[RoundResult]:
    photos = sample_photos()
    key = create_key(Settings(data_dir=root / "data"), "faults").secret
    server = start_server(root, "setup")
    try:
        created = httpx.post(
            f"{server.url}/v1/collection",
            headers={"x-api-key": key},
            json={"name": "faults"},
            timeout=REQUEST_TIMEOUT_S,
        )
        collection = created.json()["data"]["collection_id"]
    finally:
        server.stop()
    rng = random.Random(seed)
    results = []
    for number in range(1, rounds + 1):
        result = fault_round(root, key, collection, photos, number, rng)
        results.append(result)
        report(
            f"round {number}: {result.acknowledged} enrollments acknowledged before kill -9, "
            f"{len(result.lost)} lost; half-written rows: {sum(result.half_written.values())} "
            f"{result.half_written}; killed while training: "
            f"{'yes' if result.killed_while_training else 'no (already done)'}; "
            f"collections left training after restart: {result.left_training}"
        )
    return results


def run_fault_bench(rounds: int = 3) -> int:
    print(
        f"facegate bench faults: {rounds} rounds of kill -9 during an enrollment burst and "
        "during training, then restart and check"
    )
    with tempfile.TemporaryDirectory(prefix="facegate-faults-") as folder:
        results = run_fault_rounds(rounds, Path(folder))
    ok = all(r.ok for r in results)
    print("all acknowledged writes present, nothing half-written" if ok else "FAILED")
    return 0 if ok else 1
