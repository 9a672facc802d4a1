"""Per-key token buckets: ``rate`` requests a minute on average, bursts of up to ``rate``.

Kept in this process's memory: with several API processes each enforces its own share.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from facegate.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0  # tokens per second
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket or raise RateLimited with the wait in seconds."""
        if not self.enabled:
            return
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.per_minute), now)
            refill = (now - bucket.stamp) * self._rate
            bucket.tokens = min(float(self.per_minute), bucket.tokens + refill)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = math.ceil((1.0 - bucket.tokens) / self._rate)
        raise RateLimited(
            f"rate limit of {self.per_minute} requests per minute exceeded; retry in {wait} s",
            retry_after_s=wait,
        )
