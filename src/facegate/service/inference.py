"""A bounded pool for the CPU-heavy engine calls, with admission control.

Requests beyond the workers wait in a short queue; beyond that they are refused at once with
503 (better than letting latency grow without bound), and so is everything once shutdown began.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from facegate.errors import Unavailable

P = ParamSpec("P")
R = TypeVar("R")


def resolve_workers(configured: int) -> int:
    return configured if configured > 0 else (os.cpu_count() or 1)


class InferencePool:
    def __init__(self, workers: int, queue_limit: int) -> None:
        self.workers = max(1, workers)
        self.queue_limit = max(0, queue_limit)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="facegate-infer")
        self._lock = threading.Lock()
        self._admitted = 0
        self._closing = False

    @property
    def in_flight(self) -> int:
        """Running plus waiting calls."""
        return self._admitted

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        self._admit()
        try:
            loop = asyncio.get_running_loop()
            call = functools.partial(fn, *args, **kwargs)
            return await loop.run_in_executor(self._executor, call)
        finally:
            with self._lock:
                self._admitted -= 1

    def close(self) -> None:
        """Refuse new work, let admitted work finish."""
        with self._lock:
            self._closing = True
        self._executor.shutdown(wait=True, cancel_futures=False)

    def _admit(self) -> None:
        with self._lock:
            if self._closing:
                raise Unavailable("the server is shutting down; retry in a moment")
            if self._admitted >= self.workers + self.queue_limit:
                raise Unavailable(
                    f"the server is overloaded ({self._admitted} requests are waiting for "
                    "face inference); retry in a moment"
                )
            self._admitted += 1
