"""Exact search with numpy: every distance computed, grouped per label with one reduction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from facegate.index.base import Hit


class ExactIndex:
    def __init__(self, vectors: NDArray[np.float32], labels: Sequence[str]) -> None:
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors but {len(labels)} labels")
        label_array = np.asarray(labels, dtype=object)
        # Rows of one label made contiguous, so per-label minima are one reduceat call.
        order = np.argsort(label_array, kind="stable")
        self._vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        self._sq_norms = np.einsum("ij,ij->i", self._vectors, self._vectors)
        sorted_labels = label_array[order]
        if len(order):
            unique, starts = np.unique(sorted_labels, return_index=True)
        else:
            unique, starts = np.array([], dtype=object), np.array([], dtype=np.intp)
        self._labels: list[str] = [str(label) for label in unique]
        self._starts = np.asarray(starts, dtype=np.intp)

    @property
    def size(self) -> int:
        return len(self._vectors)

    @property
    def labels(self) -> int:
        return len(self._labels)

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if not self._labels or k <= 0:
            return [[] for _ in queries]
        # |q - v|² = |q|² + |v|² - 2 q·v: one matrix product instead of a difference per row.
        squared = (
            np.einsum("ij,ij->i", queries, queries)[:, np.newaxis]
            + self._sq_norms[np.newaxis, :]
            - 2.0 * (queries @ self._vectors.T)
        )
        per_label = np.minimum.reduceat(np.maximum(squared, 0.0), self._starts, axis=1)
        k = min(k, len(self._labels))
        results = []
        for row in per_label:
            nearest = np.argpartition(row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            nearest = nearest[np.argsort(row[nearest], kind="stable")]
            results.append([Hit(self._labels[i], float(np.sqrt(row[i]))) for i in nearest])
        return results
