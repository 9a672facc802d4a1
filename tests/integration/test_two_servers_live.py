"""Two servers on one store, with the real models over real HTTP, on SQLite and on PostgreSQL:
what one process writes, the other serves (its in-memory index follows the store's snapshot
version), and what one deletes is gone from the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facegate.eval.serve_process import ServeProcess
from facegate.service.keys import create_key
from tests.integration.conftest import (
    Photos,
    SharedStore,
    envelope_data,
    start_server,
    wait_ready,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def clients(tmp_path: Path, shared_store: SharedStore) -> Iterator[tuple[httpx.Client, ...]]:
    """Clients of servers A and B, both on ``shared_store`` and with the same key."""
    key = create_key(shared_store.settings, "alice")  # migrates the store before either starts
    servers: list[ServeProcess] = []
    opened: list[httpx.Client] = []
    try:
        for name in ("a", "b"):
            servers.append(
                start_server(shared_store.data_dir, tmp_path / f"{name}.log", **shared_store.env)
            )
        for server in servers:
            wait_until(server, "/readyz", lambda r: r.status_code == 200)
            opened.append(
                httpx.Client(
                    base_url=f"{server.url}/v1", headers={"x-api-key": key.secret}, timeout=120
                )
            )
        yield tuple(opened)
    finally:
        for client in opened:
            client.close()
        for server in servers:
            server.stop()


def test_enrolled_on_one_server_identified_on_the_other_deleted_there_gone_here(
    clients: tuple[httpx.Client, ...], photos: type[Photos], shared_store: SharedStore
) -> None:
    a, b = clients
    collection = envelope_data(a.post("/collection", json={"name": "shared"}))["collection_id"]
    people = {}
    for name, photo in (("Grace Hopper", photos.grace), ("Eileen Collins", photos.eileen)):
        body = {f"img{i}": photos.b64(photo(variant)) for i, variant in enumerate((0, 1, 2))}
        people[name] = envelope_data(
            a.post("/enroll", json={**body, "name": name, "collection_id": collection})
        )["enrollment_id"]
    envelope_data(a.post("/train", json={"collection_id": collection}))
    assert wait_ready(a, collection)["size"] == {"enrollments": 2, "embeddings": 6}

    # B never saw these requests: it reads the snapshot A's training wrote.
    assert wait_ready(b, collection)["size"] == {"enrollments": 2, "embeddings": 6}
    identified = envelope_data(
        b.post("/identify", json={"img": photos.b64(photos.grace(5)), "collection_id": collection})
    )
    assert (identified["name"], identified["key"]) == ("Grace Hopper", people["Grace Hopper"])

    # Deleted on B: A no longer matches against it, lists it, or identifies it after training.
    envelope_data(b.request("DELETE", "/enroll", json={"enrollment_id": people["Grace Hopper"]}))
    missing = a.post(
        "/match", json={"img": photos.b64(photos.grace(4)), "id": people["Grace Hopper"]}
    )
    assert missing.status_code == 404, missing.text
    listed = next(c for c in envelope_data(a.get("/collection")) if c["id"] == collection)
    assert listed["enrollments"] == [people["Eileen Collins"]]
    envelope_data(a.post("/train", json={"collection_id": collection}))
    assert wait_ready(a, collection)["size"] == {"enrollments": 1, "embeddings": 3}
    after = envelope_data(
        a.post("/identify", json={"img": photos.b64(photos.grace(5)), "collection_id": collection})
    )
    assert after["key"] != people["Grace Hopper"] and after["name"] != "Grace Hopper"

    store = shared_store.open()
    try:
        assert (
            store.scalar("SELECT count(*) FROM enrollments WHERE id = ?", people["Grace Hopper"])
            == 0
        )
        assert (
            store.scalar(
                "SELECT count(*) FROM embeddings WHERE enrollment_id = ?", people["Grace Hopper"]
            )
            == 0
        )
    finally:
        store.dispose()
    if shared_store.backend == "postgresql":
        assert not (shared_store.data_dir / "facegate.db").exists()
