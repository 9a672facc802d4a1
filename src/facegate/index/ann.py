"""An approximate nearest-neighbour index file: usearch's HNSW over a snapshot's embeddings.

Why usearch (measured with tools/ann_choice.py, BENCHMARKS.md): its int8 vectors make a
million 128-d descriptors a file of a few hundred MB instead of 512 MB of float32 plus the
graph (hnswlib keeps float32 only), and a saved index can be *viewed* — memory-mapped
read-only — so every API process on a machine shares one copy in the page cache and opening it
costs nothing. Keys are the
embeddings' integer ids; nothing per vector lives in Python.

The index only proposes candidates: the gallery re-reads the candidates' rows from the store
(which drops deleted ones and gives their exact float32 vectors) and ranks them exactly, so the
index's quantisation costs recall only, never a wrong distance.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from usearch.compiled import ScalarKind
from usearch.index import BatchMatches, Index

__all__ = ["Index", "ScalarKind", "ViewCache"]

# HNSW shape, chosen on 100,000 vectors drawn like SFace descriptors (eval/scale_bench.py's
# Gaussian) with probes at their mates' typical cosine (0.78): they lie far from every stored
# vector, which is hard for a graph search. 16 links per node found the true nearest for 90 %
# of probes at 128 search candidates, 97 % at 256; 32 links with 64 candidates while inserting:
# 99.7 % at 128 and 100 % at 256, 1.5-2.5 ms a search, a build ~30 % slower than 16 links
# (32 links and 128 while inserting: 3x the build for the same recall).
CONNECTIVITY = 32
EXPANSION_ADD = 64
EXPANSION_SEARCH = 256
_SHAPE: dict[str, Any] = {
    "connectivity": CONNECTIVITY,
    "expansion_add": EXPANSION_ADD,
    "expansion_search": EXPANSION_SEARCH,
}
# Vectors added per call while building: bounds the float32 copy held at once.
BUILD_CHUNK = 50_000
# usearch's own thread pool while building (0: every core); searches use the caller's thread.
BUILD_THREADS = 0


def new_index(dimension: int, *, unit: bool) -> Index:
    """int8 + cosine for unit descriptors (cosine ranks them as Euclidean distance does);
    float16 + squared Euclidean for any other (int8 assumes unit length)."""
    metric, dtype = ("cos", "i8") if unit else ("l2sq", "f16")
    return Index(ndim=dimension, metric=metric, dtype=dtype, **_SHAPE)


def is_unit(vectors: NDArray[np.float32]) -> bool:
    if not len(vectors):
        return True
    norms = np.linalg.norm(vectors, axis=1)
    return bool(np.all(np.abs(norms - 1.0) < 1e-3))


def add(index: Index, keys: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
    if len(keys):
        index.add(keys.astype(np.uint64), vectors, threads=BUILD_THREADS)


def keys_of(index: Index) -> NDArray[np.int64]:
    return np.asarray(index.keys[0 : len(index)], dtype=np.int64)


def save(index: Index, path: Path) -> None:
    """Written beside and renamed into place: a reader never maps half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        index.save(str(partial))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def load(path: Path) -> Index:
    """A private, writable copy (to update at train time)."""
    index = Index.restore(str(path), False, **_SHAPE)
    if index is None:
        raise FileNotFoundError(path)
    return index


def candidates(index: Index, queries: NDArray[np.float32], count: int) -> list[NDArray[np.int64]]:
    """Per query, the keys of up to ``count`` nearest vectors."""
    count = max(1, min(count, len(index)))
    matches = index.search(np.atleast_2d(queries), count, threads=1)
    if not isinstance(matches, BatchMatches):  # one query: usearch answers a flat Matches
        return [np.asarray(matches.keys, dtype=np.int64)]
    keys = np.asarray(matches.keys)
    found = np.asarray(matches.counts)
    return [keys[i, : int(found[i])].astype(np.int64) for i in range(len(keys))]


class ViewCache:
    """Index files opened as memory-mapped views, the most recently used ``capacity`` kept.

    A file's content never changes after it is written (a new snapshot gets a new file), so a
    view is keyed by its path alone and never goes stale."""

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._views: OrderedDict[Path, Index] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Index:
        with self._lock:
            view = self._views.get(path)
            if view is not None:
                self._views.move_to_end(path)
                return view
        opened = Index.restore(str(path), True, **_SHAPE)
        if opened is None:
            raise FileNotFoundError(path)
        with self._lock:
            view = self._views.setdefault(path, opened)
            self._views.move_to_end(path)
            while len(self._views) > self._capacity:
                self._views.popitem(last=False)
        return view

    def forget(self, paths: set[Path]) -> None:
        with self._lock:
            for path in paths:
                self._views.pop(path, None)
