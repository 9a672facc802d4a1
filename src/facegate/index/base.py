"""The search interface: nearest *labels* (people), each by its closest stored vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Hit:
    label: str  # an enrollment id
    distance: float  # Euclidean distance from the query to the label's closest vector


class VectorIndex(Protocol):
    @property
    def size(self) -> int:
        """Number of vectors."""
        ...

    @property
    def labels(self) -> int:
        """Number of distinct labels."""
        ...

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """For each query row, the k labels whose closest vector is nearest, nearest first."""
        ...
