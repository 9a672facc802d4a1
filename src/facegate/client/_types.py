"""Typed results: frozen dataclasses built from the wire's ``data`` objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class FaceQuality:
    eye_distance_px: float
    sharpness: float  # variance of the Laplacian; under ~30 is blurry
    yaw_deg: float
    pitch_deg: float
    face_size_px: float


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face, in pixels of the image as sent (after EXIF orientation)."""

    box: Box  # x1, y1, x2, y2
    confidence: float
    # Left eye, right eye, nose, left and right mouth corners, as (x, y).
    points: tuple[Point, ...]
    landmarks: tuple[Point, ...] | None  # 68 (x, y) points, when asked for
    quality: FaceQuality | None


@dataclass(frozen=True, slots=True)
class SpoofCheck:
    label: str  # "real" or "fake"
    score: float  # probability that the face is a presentation attack
    check_id: str  # the id of the server's record of this check

    @property
    def is_fake(self) -> bool:
        return self.label == "fake"


@dataclass(frozen=True, slots=True)
class Match:
    """A face against every stored embedding of an enrollment, in enrollment order."""

    scores: tuple[float, ...]
    matches: tuple[bool, ...]

    @property
    def best_score(self) -> float:
        return max(self.scores, default=0.0)

    @property
    def is_match(self) -> bool:
        """Whether any stored embedding matched at the threshold used."""
        return any(self.matches)


@dataclass(frozen=True, slots=True)
class Candidate:
    enrollment_id: str
    name: str | None
    score: float


@dataclass(frozen=True, slots=True)
class Identification:
    """Who a face is. ``enrollment_id`` and ``name`` are None for a face nobody enrolled matches.

    The answer to ``identify`` describes the largest face; with ``all_faces=True`` its ``faces``
    holds every face (largest first), each with its ``box`` and ``confidence``.
    """

    enrollment_id: str | None
    name: str | None
    score: float
    unknown_probability: float
    candidates: tuple[Candidate, ...] = ()
    box: Box | None = None
    confidence: float | None = None
    faces: tuple[Identification, ...] = ()

    @property
    def identified(self) -> bool:
        return self.enrollment_id is not None


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    name: str
    enrollment_ids: tuple[str, ...]
    unknowns: bool
    status: str  # untrained, training, ready or stale
    created: datetime
    updated: datetime
    trained_at: datetime | None
    owner: str  # the id of the API key that created it
    # How many members it has; enrollment_ids is one page of them when there are more than the
    # listing's enrollments_limit.
    enrollment_count: int = 0


@dataclass(frozen=True, slots=True)
class RecipeCount:
    """How many of an enrollment's embeddings one recipe (and TTA mode) made. The server
    compares only embeddings of its running recipe: others call for re-enrolling."""

    recipe: str
    tta: str | None
    images: int


@dataclass(frozen=True, slots=True)
class Enrollment:
    id: str
    name: str | None
    images: int  # stored embeddings, one per enrolled image
    collection_ids: tuple[str, ...]
    recipes: tuple[RecipeCount, ...]
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class EnrollmentPage:
    """One page of ``GET /v1/enroll``: ``total`` counts all of the key's enrollments."""

    enrollments: tuple[Enrollment, ...]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page; None on the last one."""
        following = self.offset + len(self.enrollments)
        return following if self.enrollments and following < self.total else None


# Parsers: the wire → the types. KeyError / TypeError / ValueError mean a malformed answer.


def _point_pairs(flat: list[Any]) -> tuple[Point, ...]:
    half = len(flat) // 2
    return tuple((float(x), float(y)) for x, y in zip(flat[:half], flat[half:], strict=True))


def _box(raw: list[Any]) -> tuple[Box, float]:
    x1, y1, x2, y2, confidence = (float(v) for v in raw)
    return (x1, y1, x2, y2), confidence


def face(raw: dict[str, Any]) -> Face:
    box, confidence = _box(raw["bounding_box"])
    landmarks = raw.get("landmarks")
    quality = raw.get("quality")
    return Face(
        box=box,
        confidence=confidence,
        points=_point_pairs(raw["points"]),
        landmarks=None if landmarks is None else tuple((float(x), float(y)) for x, y in landmarks),
        quality=None
        if quality is None
        else FaceQuality(**{k: float(v) for k, v in quality.items()}),
    )


def faces(raw: dict[str, Any]) -> list[Face]:
    return [face(f) for f in raw["faces"]]


def spoof_check(raw: dict[str, Any]) -> SpoofCheck:
    return SpoofCheck(label=str(raw["class"]), score=float(raw["score"]), check_id=str(raw["key"]))


_EMBEDDING = re.compile(r"^emb(\d+)_score$")


def match(raw: dict[str, Any]) -> Match:
    indexes = sorted(int(m.group(1)) for key in raw if (m := _EMBEDDING.match(key)))
    return Match(
        scores=tuple(float(raw[f"emb{i}_score"]) for i in indexes),
        matches=tuple(bool(raw[f"emb{i}_match"]) for i in indexes),
    )


def _candidate(raw: dict[str, Any]) -> Candidate:
    return Candidate(enrollment_id=str(raw["key"]), name=raw.get("name"), score=float(raw["score"]))


def identification(raw: dict[str, Any]) -> Identification:
    box, confidence = _box(raw["bounding_box"]) if "bounding_box" in raw else (None, None)
    return Identification(
        enrollment_id=raw["key"],
        name=raw["name"],
        score=float(raw["score"]),
        unknown_probability=float(raw["unknown_probability"]),
        candidates=tuple(_candidate(c) for c in raw.get("candidates") or ()),
        box=box,
        confidence=confidence,
        faces=tuple(identification(f) for f in raw.get("faces") or ()),
    )


def _time(value: str) -> datetime:
    # The seed's layout has no zone; facegate's times are UTC.
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def collection(raw: dict[str, Any]) -> Collection:
    trained_at = raw.get("trained_at")
    return Collection(
        id=str(raw["id"]),
        name=str(raw["name"]),
        enrollment_ids=tuple(str(e) for e in raw["enrollments"]),
        unknowns=bool(raw["unknown"]),
        status=str(raw.get("status", "untrained")),
        created=_time(raw["created"]),
        updated=_time(raw["updated"]),
        trained_at=_time(trained_at) if trained_at else None,
        owner=str(raw.get("owner", "")),
        # A server older than the count listed every id.
        enrollment_count=int(raw.get("enrollment_count", len(raw["enrollments"]))),
    )


def enrollment(raw: dict[str, Any]) -> Enrollment:
    return Enrollment(
        id=str(raw["id"]),
        name=raw["name"],
        images=int(raw["images"]),
        collection_ids=tuple(str(c) for c in raw["collections"]),
        recipes=tuple(
            RecipeCount(recipe=str(r["recipe"]), tta=r.get("tta"), images=int(r["images"]))
            for r in raw["recipes"]
        ),
        created=_time(raw["created"]),
        updated=_time(raw["updated"]),
    )


def enrollment_page(raw: dict[str, Any]) -> EnrollmentPage:
    return EnrollmentPage(
        enrollments=tuple(enrollment(e) for e in raw["enrollments"]),
        total=int(raw["total"]),
        limit=int(raw["limit"]),
        offset=int(raw["offset"]),
    )
