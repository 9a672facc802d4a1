"""Two servers on one store (one SQLite file, one PostgreSQL database): the one holding a training
job is SIGKILLed, the other takes the job over once the lease expires, and the collection becomes
``ready`` (issue 11).

No models are loaded (training needs none): the member is written straight into the store, as
enrolling it would load the recogniser. Server A runs its jobs after a deliberate delay (the
test-only ``training_test_delay_s``), so it is killed holding the lease; its own sweeper is off.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert

from facegate.engine.zoo import SFACE_RECIPE
from facegate.eval.serve_process import ServeProcess
from facegate.service.keys import CreatedKey, create_key
from facegate.store.models import Embedding
from tests.integration.conftest import SharedStore

pytestmark = pytest.mark.integration

LEASE_S = 2.0
SWEEP_S = 0.25
# From A's death to `ready` on B: the lease's remainder, one sweep and the job, with room for a
# loaded machine; far under what the defaults promise (~20 s).
TAKEOVER_BOUND_S = 15.0
STARTUP_TIMEOUT_S = 120


def _env(**settings: str) -> dict[str, str]:
    return {
        **os.environ,
        "FACEGATE_RATE_LIMIT_PER_MINUTE": "0",
        "FACEGATE_WARM_UP_ON_START": "false",
        "FACEGATE_TRAINING_LEASE_S": str(LEASE_S),
        "FACEGATE_TRAINING_HEARTBEAT_S": "0.25",
        **{
            name if name.startswith("FACEGATE_") else f"FACEGATE_{name.upper()}": value
            for name, value in settings.items()
        },
    }


@pytest.fixture
def servers(
    tmp_path: Path, shared_store: SharedStore
) -> Iterator[tuple[ServeProcess, ServeProcess, CreatedKey]]:
    data_dir = shared_store.data_dir
    # Made before either server starts, so that the store is migrated once, not by two at once.
    key = create_key(shared_store.settings, "alice")
    store_env = shared_store.env
    b = ServeProcess(
        data_dir, tmp_path / "b.log", env=_env(**store_env, training_sweep_s=str(SWEEP_S))
    )
    a = ServeProcess(
        data_dir,
        tmp_path / "a.log",
        env=_env(**store_env, training_sweep_s="0", training_test_delay_s="600"),
    )
    try:
        for server in (a, b):
            server.wait_until("/healthz", lambda r: r.status_code == 200, STARTUP_TIMEOUT_S)
        yield a, b, key
    finally:
        for server in (a, b):
            if server.process.poll() is None:
                server.stop()


def test_a_killed_owners_training_is_finished_by_another_process(
    shared_store: SharedStore, servers: tuple[ServeProcess, ServeProcess, CreatedKey]
) -> None:
    a, b, key = servers
    headers = {"x-api-key": key.secret}
    created = httpx.post(f"{a.url}/v1/collection", headers=headers, json={"name": "c"}, timeout=30)
    collection = created.json()["data"]["collection_id"]
    stamp = "2026-01-01 00:00:00"
    writer = shared_store.open(read_only=False)
    try:
        # The running recipe's: the snapshot's size (in the listing) counts only those.
        writer.rows(
            "INSERT INTO enrollments (id, owner_id, name, created, updated) "
            "VALUES ('e1', ?, 'Ada', ?, ?)",
            key.key_id,
            stamp,
            stamp,
        )
        # Through the model: its vector column is pgvector's type on PostgreSQL, a blob on
        # SQLite, and the column type converts the bytes.
        with writer.engine.begin() as connection:
            connection.execute(
                insert(Embedding).values(
                    enrollment_id="e1",
                    position=0,
                    vector=bytes(128 * 4),
                    recipe=SFACE_RECIPE.key,
                    created=datetime(2026, 1, 1),
                )
            )
        writer.rows(
            "INSERT INTO collection_members (collection_id, enrollment_id, added) "
            "VALUES (?, 'e1', ?)",
            collection,
            stamp,
        )
    finally:
        writer.dispose()
    store = shared_store.open()

    trained = httpx.post(
        f"{a.url}/v1/train", headers=headers, json={"collection_id": collection}, timeout=30
    )
    assert trained.status_code == 200, trained.text
    [(training, owner)] = store.rows(
        "SELECT training, training_owner FROM collections WHERE id = ?", collection
    )
    assert training  # 1 on SQLite, True on PostgreSQL
    assert isinstance(owner, str) and f":{a.process.pid}:" in owner, owner

    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=30)
    killed_at = time.monotonic()

    listing: list[dict[str, object]] = []
    while time.monotonic() - killed_at < TAKEOVER_BOUND_S:
        listing = httpx.get(f"{b.url}/v1/collection", headers=headers, timeout=30).json()["data"]
        if [c["status"] for c in listing] == ["ready"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"not ready {TAKEOVER_BOUND_S} s after the kill: {listing}\n{b.log_tail()}")

    assert store.rows("SELECT count(*) FROM collections WHERE training") == [(0,)]
    assert store.rows("SELECT training_owner, training_lease_until FROM collections") == [
        (None, None)
    ]
    # B's snapshot holds the member A never got to: one person, one embedding.
    assert listing[0]["size"] == {"enrollments": 1, "embeddings": 1}, listing
    assert "claimed training jobs" in b.log_tail(100_000)
    store.dispose()
