"""Recognisers: aligned chips of a detected face, and the network that turns them into descriptors.

Each recogniser owns its alignment (the chip its network was trained on) and says, through its
:class:`Recipe`, what its descriptors are: comparable only with descriptors of the same recipe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import dlib
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from facegate.engine import align
from facegate.engine.embed import Embedder
from facegate.engine.registry import Recipe
from facegate.engine.types import DetectedFace


class Recognizer(Protocol):
    @property
    def recipe(self) -> Recipe: ...

    def chips(
        self, rgb: NDArray[np.uint8], face: DetectedFace, views: Sequence[align.View]
    ) -> list[NDArray[np.uint8]]:
        """The aligned chips the network sees, one per view."""
        ...

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """N chips (N x H x W x 3 RGB) → N x dimension descriptors, one network call."""
        ...


class DlibRecognizer:
    """dlib's ResNet on its 150x150 chips, cut from dlib's 5-point shape inside the box."""

    def __init__(self, recipe: Recipe, embedder: Embedder, shape5: dlib.shape_predictor) -> None:
        self._recipe = recipe
        self._embedder = embedder
        self._shape5 = shape5

    @property
    def recipe(self) -> Recipe:
        return self._recipe

    def chips(
        self, rgb: NDArray[np.uint8], face: DetectedFace, views: Sequence[align.View]
    ) -> list[NDArray[np.uint8]]:
        return align.face_chips(rgb, self._shape5, face.box, views)

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        return self._embedder.embed(chips)


class SFaceRecognizer:
    """SFace (MobileFaceNet, 128-d) on 112x112 RGB chips aligned on the detector's 5 points.

    Descriptors are scaled to unit length (SFace is compared by cosine), so the Euclidean
    distance the rest of facegate uses is sqrt(2 - 2 cos).
    """

    def __init__(self, recipe: Recipe, session: ort.InferenceSession) -> None:
        self._recipe = recipe
        self._session = session
        self._input = session.get_inputs()[0].name

    @property
    def recipe(self) -> Recipe:
        return self._recipe

    def chips(
        self, rgb: NDArray[np.uint8], face: DetectedFace, views: Sequence[align.View]
    ) -> list[NDArray[np.uint8]]:
        return align.arcface_chips(rgb, face.points, views)

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        if not len(chips):
            return np.zeros((0, self._recipe.dimension), np.float32)
        # The graph itself maps 0..255 to [-1, 1]; it was trained on RGB (BGR costs accuracy).
        batch = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        (out,) = self._session.run(None, {self._input: batch})
        return unit_rows(np.asarray(out, dtype=np.float32))


def unit_rows(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
