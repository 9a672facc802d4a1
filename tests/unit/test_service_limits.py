"""Rate limits per key counted in the shared store, and the inference pool's admission control."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from facegate.config import Settings
from facegate.errors import RateLimited, Unavailable
from facegate.service.inference import InferencePool, resolve_workers
from facegate.service.ratelimit import RateLimiter
from facegate.store.db import Database
from facegate.store.models import RateLimitWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # an epoch minute's first second

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database.from_settings(Settings(data_dir=tmp_path))


def _windows(database: Database) -> list[tuple[str, int, int]]:
    with database.reading() as session:
        rows = session.execute(
            select(
                RateLimitWindow.key_id, RateLimitWindow.window_start, RateLimitWindow.requests
            ).order_by(RateLimitWindow.key_id, RateLimitWindow.window_start)
        ).all()
    return [tuple(row) for row in rows]


def test_a_window_admits_the_limit_then_waits_for_the_next(database: Database) -> None:
    clock = Clock()
    limiter = RateLimiter(database, per_minute=3, clock=clock)
    for _ in range(3):
        limiter.take("a")
    clock.now += 39.5
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == 21  # the window ends 20.5 s later, rounded up
    limiter.take("b")  # another key has its own count
    clock.now += 20.5
    limiter.take("a")  # a new window
    assert _windows(database) == [
        ("a", 1_800_000_000, 4),
        ("a", 1_800_000_060, 1),
        ("b", 1_800_000_000, 1),
    ]


def test_limiters_sharing_a_database_share_the_count(database: Database, tmp_path: Path) -> None:
    """Two processes' limiters: each has its own engine on one SQLite file."""
    clock = Clock()
    other = Database.from_settings(Settings(data_dir=tmp_path))
    first = RateLimiter(database, per_minute=4, clock=clock)
    second = RateLimiter(other, per_minute=4, clock=clock)
    admitted = 0
    for limiter in (first, second) * 4:
        try:
            limiter.take("a")
            admitted += 1
        except RateLimited:
            pass
    assert admitted == 4
    other.dispose()


def test_concurrent_requests_admit_exactly_the_limit(database: Database) -> None:
    limiter = RateLimiter(database, per_minute=10, clock=Clock())
    outcomes: list[bool] = []

    def request() -> None:
        try:
            limiter.take("a")
            outcomes.append(True)
        except RateLimited:
            outcomes.append(False)

    threads = [threading.Thread(target=request) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 10 and len(outcomes) == 25


def test_windows_before_the_previous_one_are_pruned(database: Database) -> None:
    clock = Clock()
    limiter = RateLimiter(database, per_minute=5, clock=clock)
    for _ in range(3):
        limiter.take("a")
        clock.now += 60
    # Three windows were written; the third's first request pruned the first.
    assert [row[1] for row in _windows(database)] == [1_800_000_060, 1_800_000_120]


def test_zero_means_no_limit(database: Database) -> None:
    limiter = RateLimiter(database, per_minute=0)
    assert not limiter.enabled
    for _ in range(1000):
        limiter.take("a")
    assert _windows(database) == []  # nothing written either


def test_resolve_workers_defaults_to_the_cores() -> None:
    assert resolve_workers(3) == 3
    assert resolve_workers(0) >= 1


def test_pool_refuses_beyond_workers_plus_queue_and_after_close() -> None:
    pool = InferencePool(workers=1, queue_limit=1)
    release = threading.Event()

    async def scenario() -> list[object]:
        first = asyncio.create_task(pool.run(release.wait, 5))
        second = asyncio.create_task(pool.run(release.wait, 5))
        await asyncio.sleep(0.05)
        assert pool.in_flight == 2
        with pytest.raises(Unavailable, match="overloaded"):
            await pool.run(release.wait, 5)
        release.set()
        return list(await asyncio.gather(first, second))

    assert asyncio.run(scenario()) == [True, True]
    assert pool.in_flight == 0
    pool.close()
    with pytest.raises(Unavailable, match="shutting down"):
        asyncio.run(pool.run(int, "1"))
