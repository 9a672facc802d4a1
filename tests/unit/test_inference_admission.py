"""Overload that degrades gracefully: admission by estimated cost before the body is read, and a
wait for a worker bounded in time (issue 12, item 9)."""

from __future__ import annotations

import asyncio
import time

import pytest
from fastapi.testclient import TestClient

from facegate.errors import Unavailable
from facegate.service.container import Services
from facegate.service.inference import InferencePool


def _sleeper(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _learn(pool: InferencePool, kind: str, seconds: float, body_bytes: int | None = None) -> None:
    for _ in range(40):  # the moving average converges on what the calls took
        pool.observe(kind, seconds, body_bytes)


def test_a_request_that_would_wait_too_long_is_refused_at_once() -> None:
    pool = InferencePool(2, 32, max_wait_s=1.0)
    _learn(pool, "slow", 0.6)
    running = [pool.admit("slow") for _ in range(2)]  # both workers: 0.6 s each
    queued = pool.admit("slow")  # waits ~0.6 s, finishes after ~0.9 s: admitted
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        pool.admit("slow")  # would wait ~0.9 s and need 0.3 s more: over the bound
    assert time.monotonic() - started < 0.05
    assert refused.value.retry_after_s == 1
    assert "limit is 1 s" in refused.value.message
    for ticket in [*running, queued]:
        pool.release(ticket)


def test_an_idle_server_admits_anything() -> None:
    pool = InferencePool(1, 0, max_wait_s=0.1)
    _learn(pool, "huge", 30.0)
    pool.release(pool.admit("huge"))


def test_an_admitted_request_waits_for_a_worker_at_most_max_wait() -> None:
    pool = InferencePool(1, 32, max_wait_s=0.3)
    _learn(pool, "other", 0.01)  # the estimate is wrong: the call takes 1.5 s

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(_sleeper, 1.5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(Unavailable, match=r"within 0\.3 s") as refused:
            await pool.run(_sleeper, 0.0)
        assert 0.25 < time.monotonic() - started < 0.8
        assert refused.value.retry_after_s is not None
        assert await first == 1.5
        assert pool.in_flight == 0

    asyncio.run(scenario())


def test_the_estimate_follows_body_size_and_measured_time() -> None:
    pool = InferencePool(2, 8)
    _learn(pool, "enroll", 0.4, 100_000)
    small, large = pool.admit("enroll", 100_000), pool.admit("enroll", 1_000_000)
    assert small.cost_s == pytest.approx(0.4, rel=0.05)
    assert large.cost_s == pytest.approx(0.4 * (0.5 + 0.5 * 10), rel=0.05)
    assert pool.estimated_wait_s() == pytest.approx((small.cost_s + large.cost_s) / 2)
    pool.release(small)
    pool.release(large)
    pool.release(large)  # releasing twice changes nothing
    assert pool.in_flight == 0 and pool.estimated_wait_s() == 0


def test_bodies_in_flight_are_bounded_in_bytes() -> None:
    pool = InferencePool(4, 8, max_body_bytes=1000)
    first = pool.admit("enroll", 900)  # one request is always admitted, however large
    with pytest.raises(Unavailable, match="bytes of request bodies"):
        pool.admit("enroll", 200)
    second = pool.admit("enroll", 100)
    pool.release(first)
    pool.release(pool.admit("enroll", 800))
    pool.release(second)


def test_a_refused_request_gets_503_before_its_body_is_parsed(
    client: TestClient, services: Services
) -> None:
    headers = {"x-api-key": services.keys.create("load").secret}
    pool = services.inference
    _learn(pool, "POST /v1/match", 5.0)
    # Both workers busy with calls measured at 5 s each: the backlog is seconds long.
    tickets = [pool.admit("POST /v1/match") for _ in range(pool.workers)]
    try:
        # Not even JSON: a parse would have answered 400.
        response = client.post("/v1/match", content=b"{not json", headers=headers)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 5
        assert response.json()["success"] is False and "overloaded" in response.json()["message"]
        # Endpoints that run no model are not held back.
        assert client.get("/v1/collection", headers=headers).status_code == 200
    finally:
        for ticket in tickets:
            pool.release(ticket)
    assert client.post("/v1/match", content=b"{not json", headers=headers).status_code == 400
    assert pool.in_flight == 0
