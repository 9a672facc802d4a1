"""Built indexes kept in memory per collection, rebuilt when the snapshot version moves."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from facegate.index.base import VectorIndex


@dataclass(frozen=True)
class CachedIndex:
    version: int
    index: VectorIndex
    names: dict[str, str | None]  # label → enrollment name at build time


# Builds of different collections run side by side on this many striped locks; a fixed pool
# rather than a lock per collection ever seen, which would grow without bound.
BUILD_LOCKS = 32


class IndexCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._entries: OrderedDict[str, CachedIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._building = [threading.Lock() for _ in range(BUILD_LOCKS)]

    def get(self, key: str, version: int, build: Callable[[], CachedIndex]) -> CachedIndex:
        """The index for (key, version), building it once even under concurrent requests."""
        entry = self._lookup(key, version)
        if entry is not None:
            return entry
        with self._building[hash(key) % BUILD_LOCKS]:
            entry = self._lookup(key, version)
            if entry is None:
                entry = build()
                self._store(key, entry)
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, key: str, version: int) -> CachedIndex | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.version != version:
                return None
            self._entries.move_to_end(key)
            return entry

    def _store(self, key: str, entry: CachedIndex) -> None:
        with self._lock:
            current = self._entries.get(key)
            # Another request may already have built a newer snapshot: keep the newer one.
            if current is None or current.version <= entry.version:
                self._entries[key] = entry
                self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
