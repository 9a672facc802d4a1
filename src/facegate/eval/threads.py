"""Concurrent clients in the benchmarks: start threads together, wait for all, time the whole."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence


def run_timed(threads: Sequence[threading.Thread]) -> float:
    """Start every thread, join them all; the wall seconds from the first start to the last
    join."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started
