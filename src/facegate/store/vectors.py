"""Descriptors as bytes: little-endian float32, so a blob reads the same on every machine."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

DTYPE = np.dtype("<f4")


def to_blob(vector: NDArray[np.floating]) -> bytes:
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def from_blob(blob: bytes) -> NDArray[np.float32]:
    return np.frombuffer(blob, dtype=DTYPE).astype(np.float32)


def stack_blobs(blobs: list[bytes], dim: int) -> NDArray[np.float32]:
    """N blobs → N x dim matrix (one copy, no per-row arrays)."""
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(blobs), dtype=DTYPE).reshape(len(blobs), dim).astype(np.float32)
