"""128-d face descriptors from dlib's ResNet, on ONNX Runtime (default) or dlib itself (reference).

Both backends take a batch of 150x150 RGB chips and compute the same function; the dlib backend
stays so that parity can always be checked against the original implementation.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray


class Embedder(Protocol):
    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """N x 150 x 150 x 3 uint8 RGB chips → N x 128 float32 descriptors."""
        ...


class DlibEmbedder:
    def __init__(self, model_path: Path) -> None:
        import dlib

        self._net = dlib.face_recognition_model_v1(str(model_path))
        # dlib's network keeps per-call buffers inside; one caller at a time.
        self._lock = threading.Lock()

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        if not len(chips):
            return np.zeros((0, 128), np.float32)
        with self._lock:
            out = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.array([np.asarray(d) for d in out], dtype=np.float32)


class OnnxEmbedder:
    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        if not len(chips):
            return np.zeros((0, 128), np.float32)
        batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        (out,) = self._session.run(["descriptors"], {"chips": batch})
        return np.asarray(out, dtype=np.float32)
