"""What the service layer needs from the face engine (FaceEngine satisfies it; tests fake it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from facegate.engine.decode import DecodedImage
from facegate.engine.types import DetectedFace


class ScoreCurve(Protocol):
    def score(self, distance: NDArray[np.float32] | float) -> NDArray[np.float64]: ...


class Engine(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def calibration(self) -> ScoreCurve: ...

    def warm_up(self) -> None: ...

    def decode(self, data: bytes) -> DecodedImage: ...

    def detect(
        self,
        image: DecodedImage,
        *,
        landmarks68: bool = False,
        quality: bool = True,
        largest_only: bool = False,
    ) -> list[DetectedFace]: ...

    def embed(self, image: DecodedImage, faces: Sequence[DetectedFace]) -> NDArray[np.float32]: ...

    def embed_many(
        self, items: Sequence[tuple[DecodedImage, DetectedFace]]
    ) -> NDArray[np.float32]: ...

    def similarities(
        self, query: NDArray[np.float32], gallery: NDArray[np.float32]
    ) -> NDArray[np.float64]: ...

    def spoof_probability(self, image: DecodedImage, face: DetectedFace) -> float: ...
