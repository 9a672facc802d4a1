"""Token buckets per key, and the bounded inference pool's admission control."""

from __future__ import annotations

import asyncio
import threading

import pytest

from facegate.errors import RateLimited, Unavailable
from facegate.service.inference import InferencePool, resolve_workers
from facegate.service.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=3, clock=clock)
    for _ in range(3):
        limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == 20  # one token per 20 s at 3 a minute
    limiter.take("b")  # another key has its own bucket
    clock.now += 20
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")


def test_zero_means_no_limit() -> None:
    limiter = RateLimiter(per_minute=0)
    assert not limiter.enabled
    for _ in range(1000):
        limiter.take("a")


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
