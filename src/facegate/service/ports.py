"""What the service layer needs from the outside: the face engine (FaceEngine satisfies it;
tests fake it) and the gallery that searches trained snapshots."""

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
from facegate.store.snapshot import SnapshotBounds


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
    name: str | None  # its name
    distance: float  # from the query to the enrollment's closest embedding


@dataclass(frozen=True)
class TrainedSnapshot:
    """A collection's trained snapshot as identify reads it from the collection row."""

    bounds: SnapshotBounds  # which rows it holds (collection, revision, watermark, recipe)
    version: int  # changes whenever its content changes: what caches are keyed on
    index: str | None  # the approximate index training built for it; None: none
    size: int | None = None  # embeddings of the recipe it held when trained (None: unknown)


@dataclass(frozen=True)
class BuiltIndex:
    """What a gallery made for a snapshot at train time."""

    name: str | None  # the index to record with the snapshot; None: there is none
    # The snapshot's embeddings and enrollments when building counted them (None: not counted)
    embeddings: int | None = None
    people: int | None = None


class Gallery(Protocol):
    """Searches trained snapshots: in process (index/gallery.py), on PostgreSQL each machine's
    copy of that index in front of pgvector (index/postgres.py), or pgvector alone
    (index/pgvector.py); chosen by the database URL and settings (index/factory.py)."""

    def open(self, recipe: str, dimension: int) -> None:
        """At start-up: make sure what searching ``recipe`` needs exists (the database's index
        for it; minutes over a large table that lacks one, and then only once)."""
        ...

    def search(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        """Per query row, the k nearest enrollments of the snapshot, nearest first (each by its
        closest embedding). RecipeMismatch when the collection's snapshot holds only
        embeddings of other recipes."""
        ...

    def build(self, bounds: SnapshotBounds, dimension: int, previous: str | None) -> BuiltIndex:
        """At train time, before the snapshot is recorded and off the request path: make what
        searching ``bounds`` needs (it may take long; the current snapshot answers meanwhile).
        Returns the index name to record with the snapshot (None when there is none) and the
        snapshot's size if it counted it; ``previous`` is the one recorded now, which may be
        updated instead of rebuilt."""
        ...

    def prepare(self, bounds: SnapshotBounds, dimension: int) -> str | None:
        """Between trainings, off the request path, recording nothing: make this machine's
        index of ``bounds`` now (from its newest one, as ``build`` would), so that the next
        training starts from it and folds in only what changed since. Returns the earlier
        prepared index it supersedes, to ``discard`` once no training can still be starting
        from it (None: none)."""
        ...

    def retire(self, collection_id: str, keep: Sequence[str]) -> None:
        """Forget the collection's indexes other than ``keep`` (after a new one is recorded,
        or with an empty ``keep`` after the collection is deleted)."""
        ...

    def discard(self, collection_id: str, name: str) -> None:
        """Forget the index ``name`` unless the collection records it (a previous index, once
        no search can still be about to open it)."""
        ...
