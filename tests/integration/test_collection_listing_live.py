"""GET /v1/collection pages a large collection's member ids, over real HTTP with the client.

The members are written straight into the store before the server starts (thousands of
enrollments would take the real models minutes to make); the server itself loads no model.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from facegate.client import Client
from facegate.config import Settings
from facegate.service.common import new_id, utcnow
from facegate.service.keys import create_key
from facegate.store.db import Database
from facegate.store.models import Collection, CollectionMember, Enrollment
from tests.integration.conftest import start_server, wait_until

MEMBERS = 2500


def _collection_of(database: Database, owner: str, name: str, members: int) -> list[str]:
    """A collection with ``members`` enrollments, added one microsecond apart; their ids."""
    start = utcnow()
    collection_id = new_id()
    ids = [new_id() for _ in range(members)]
    with database.transaction() as session:
        session.add(
            Collection(
                id=collection_id,
                owner_id=owner,
                name=name,
                unknowns=False,
                created=start,
                updated=start,
                revision=0,
                training=False,
                snapshot_version=0,
            )
        )
        session.add_all(
            Enrollment(id=i, owner_id=owner, name=None, created=start, updated=start) for i in ids
        )
        session.flush()
        session.add_all(
            CollectionMember(
                collection_id=collection_id,
                enrollment_id=enrollment_id,
                added=start + timedelta(microseconds=place),
            )
            for place, enrollment_id in enumerate(ids)
        )
    return ids


def test_a_large_collection_is_listed_a_page_at_a_time(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = create_key(settings, "big")  # also migrates the store
    database = Database.from_settings(settings)
    big = _collection_of(database, key.key_id, "big", MEMBERS)
    small = _collection_of(database, key.key_id, "small", 3)
    database.dispose()
    server = start_server(
        settings.data_dir, tmp_path / "server.log", FACEGATE_WARM_UP_ON_START="false"
    )
    try:
        wait_until(server, "/healthz", lambda r: r.status_code == 200)
        with Client(server.url, api_key=key.secret) as fg:
            default = {c.name: c for c in fg.collections()}
            pages: list[str] = []
            while len(pages) < MEMBERS:
                listed = {
                    c.name: c
                    for c in fg.collections(enrollments_limit=700, enrollments_offset=len(pages))
                }
                assert listed["big"].enrollment_count == MEMBERS
                assert len(listed["big"].enrollment_ids) <= 700
                pages += listed["big"].enrollment_ids
            counted = {c.name: c for c in fg.collections(enrollments_limit=0)}
    finally:
        server.stop()
    # The seed's listing for a small collection; the first 1000 of a large one, and its count.
    assert list(default["small"].enrollment_ids) == small
    assert default["small"].enrollment_count == 3
    assert list(default["big"].enrollment_ids) == big[:1000]
    assert default["big"].enrollment_count == MEMBERS
    assert pages == big  # every id once, in membership order
    assert counted["big"].enrollment_ids == () and counted["big"].enrollment_count == MEMBERS
