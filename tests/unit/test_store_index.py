"""Exact vector search per label, and the versioned index cache."""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest

from facegate.index import ExactIndex, IndexCache
from facegate.index.cache import CachedIndex


def _brute_force(query: np.ndarray, vectors: np.ndarray, labels: list[str]) -> dict[str, float]:
    best: dict[str, float] = {}
    for vector, label in zip(vectors, labels, strict=True):
        distance = float(np.linalg.norm(vector - query))
        best[label] = min(best.get(label, np.inf), distance)
    return best


def test_search_returns_each_label_by_its_closest_vector() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 128)).astype(np.float32)
    labels = [f"p{rng.integers(0, 40)}" for _ in range(300)]
    index = ExactIndex(vectors, labels)
    assert (index.size, index.labels) == (300, len(set(labels)))
    queries = rng.normal(size=(3, 128)).astype(np.float32)
    for query, hits in zip(queries, index.search(queries, 5), strict=True):
        expected = sorted(_brute_force(query, vectors, labels).items(), key=lambda kv: kv[1])[:5]
        assert [h.label for h in hits] == [label for label, _ in expected]
        assert [h.distance for h in hits] == pytest.approx([d for _, d in expected], abs=1e-3)


def test_k_beyond_the_labels_and_an_empty_index() -> None:
    vectors = np.eye(3, 128, dtype=np.float32)
    hits = ExactIndex(vectors, ["a", "b", "a"]).search(vectors[:1], 10)[0]
    assert [h.label for h in hits] == ["a", "b"]
    assert hits[0].distance == pytest.approx(0.0, abs=1e-6)
    empty = ExactIndex(np.zeros((0, 128), np.float32), [])
    assert empty.search(vectors, 3) == [[], [], []]
    with pytest.raises(ValueError, match="labels"):
        ExactIndex(vectors, ["a"])


def _entry(version: int) -> CachedIndex:
    return CachedIndex(version, ExactIndex(np.zeros((0, 128), np.float32), []), {})


def test_cache_rebuilds_when_the_version_moves_and_evicts_the_oldest() -> None:
    cache = IndexCache(capacity=2)
    builds: list[tuple[str, int]] = []

    def build(key: str, version: int) -> CachedIndex:
        builds.append((key, version))
        return _entry(version)

    for key, version in [("a", 1), ("a", 1), ("a", 2), ("b", 1), ("c", 1), ("a", 2)]:
        cache.get(key, version, functools.partial(build, key, version))
    # "a" v2 was evicted by "c" (capacity 2, "b" and "c" newer), so it was built again.
    assert builds == [("a", 1), ("a", 2), ("b", 1), ("c", 1), ("a", 2)]
    assert len(cache) == 2


def test_concurrent_requests_build_once() -> None:
    cache = IndexCache(capacity=4)
    calls = 0

    def slow_build() -> CachedIndex:
        nonlocal calls
        calls += 1
        time.sleep(0.05)
        return _entry(1)

    threads = [threading.Thread(target=cache.get, args=("k", 1, slow_build)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == 1
