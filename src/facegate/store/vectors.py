"""Descriptors as bytes: little-endian float32, so a blob reads the same on every machine.

:class:`VectorBytes` is the column type: the application always sees those bytes; PostgreSQL
stores a pgvector ``vector`` (so that it can index and search it), every other backend a blob.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import LargeBinary
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

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


class VectorBytes(TypeDecorator[bytes]):
    """Little-endian float32 bytes in Python; ``vector`` (any dimension) on PostgreSQL."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(VECTOR())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "postgresql":
            return value
        return from_blob(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes | bytearray | memoryview):
            return None if value is None else bytes(value)
        return to_blob(np.asarray(value, dtype=np.float32))
