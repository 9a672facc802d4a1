"""What the service layer needs from the outside: the face engine (FaceEngine satisfies it;
tests fake it) and the gallery that searches a trained collection (index/gallery.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from facegate.engine.decode import DecodedImage
from facegate.engine.openset import ImpostorTail
from facegate.engine.registry import Recipe
from facegate.engine.types import DetectedFace


@runtime_checkable
class Preloads(Protocol):
    """An engine with models that must load before the server listens (see FaceEngine)."""

    def preload(self) -> None: ...


class ScoreCurve(Protocol):
    def score(self, distance: NDArray[np.float32] | float) -> NDArray[np.float64]: ...


class Engine(Protocol):
    @property
    def ready(self) -> bool: ...

    @property
    def recipe(self) -> Recipe:
        """What this engine's descriptors are; stored with each one."""
        ...

    @property
    def tta(self) -> str: ...

    @property
    def calibration(self) -> ScoreCurve: ...

    @property
    def impostor_tail(self) -> ImpostorTail | None:
        """The recipe's impostor-score tail (the 1:N threshold rule); None when none ships."""
        ...

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


@dataclass(frozen=True)
class GalleryHit:
    label: str  # an enrollment id
    name: str | None  # its name when the snapshot was indexed
    distance: float  # from the query to the enrollment's closest embedding


class Gallery(Protocol):
    def search(
        self,
        collection_id: str,
        snapshot_version: int,
        recipe: str,
        dimension: int,
        queries: NDArray[np.float32],
        k: int,
    ) -> list[list[GalleryHit]]:
        """Per query row, the k nearest enrollments of the collection's trained snapshot (only
        embeddings of ``recipe``), nearest first. RecipeMismatch when the snapshot holds only
        embeddings of other recipes."""
        ...
