"""Request and answer shapes: validation of what clients send, and the OpenAPI documentation.

Lenient where the seed's clients need it (booleans and thresholds as strings, unknown fields
ignored), strict about types otherwise (an id must be a string, a threshold a number in [0, 1]).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _flexible_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("must be true or false")


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number, not {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _whole_number(value: Any) -> Any:
    number = _number(value)
    if number != int(number):
        raise ValueError("must be a whole number")
    return int(number)


FlexibleBool = Annotated[bool, BeforeValidator(_flexible_bool)]
# The bounds come before the validator: after it, pydantic writes them into the JSON schema as
# "ge"/"le" (not JSON Schema) instead of "minimum"/"maximum".
Threshold = Annotated[float, Field(ge=0.0, le=1.0), BeforeValidator(_number)]
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_whole_number)]
Id = Annotated[str, Field(min_length=1, max_length=256)]
Base64Image = Annotated[
    str, Field(description="base64 image (JPEG, PNG or WebP); padding and data-URI prefix optional")
]


class Payload(BaseModel):
    # Fields the seed never defined are ignored, so clients sending extras keep working.
    model_config = ConfigDict(extra="ignore")


class CollectionCreate(Payload):
    name: Annotated[str, Field(min_length=1)]
    unknowns: FlexibleBool = False


class CollectionUpdate(Payload):
    collection_id: Id
    enrollment_id: Id


class CollectionRef(Payload):
    collection_id: Id


class EnrollmentRef(Payload):
    enrollment_id: Id


_IMAGES_SCHEMA: dict[str, Any] = {
    "patternProperties": {"^img[0-9]+$": {"type": "string", "description": "base64 image"}},
    "description": "img0 … img9: one to ten base64 images, one face each (the largest is used)",
}


class EnrollCreate(Payload):
    model_config = ConfigDict(extra="allow", json_schema_extra=_IMAGES_SCHEMA)
    name: str | None = None
    collection_id: Id | None = None


class EnrollUpdate(Payload):
    model_config = ConfigDict(extra="allow", json_schema_extra=_IMAGES_SCHEMA)
    enrollment_id: Id


class MatchRequest(Payload):
    img: Base64Image
    id: Id = Field(description="the enrollment id")
    threshold: Threshold | None = Field(default=None, description="default 0.5; a number or string")


class IdentifyRequest(Payload):
    img: Base64Image
    collection_id: Id
    all_faces: FlexibleBool = Field(default=False, description="identify every face, largest first")
    top_k: PositiveInt | None = Field(default=None, description="also list the k best candidates")


# Answers (documentation only: the routes build them with the envelope helpers). -------------
DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    data: DataT | None
    message: str | None
    success: bool


class ErrorEnvelope(BaseModel):
    data: None = None
    message: str
    success: bool = False


class FaceQualityOut(BaseModel):
    eye_distance_px: float
    sharpness: float
    yaw_deg: float
    pitch_deg: float
    face_size_px: float


class FaceOut(BaseModel):
    bounding_box: list[float] = Field(description="[x1, y1, x2, y2, confidence]")
    points: list[float] = Field(description="5 x's then 5 y's: eyes, nose, mouth corners")
    landmarks: list[list[float]] | None = Field(default=None, description="68 [x, y], on request")
    quality: FaceQualityOut | None = None


class FacesOut(BaseModel):
    faces: list[FaceOut]


class SpoofOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    class_: str = Field(alias="class", description="real or fake")
    score: float = Field(description="probability of fake")
    key: str
    success: bool


class EnrollmentIdOut(BaseModel):
    enrollment_id: str


class CollectionIdOut(BaseModel):
    collection_id: str


class SnapshotSizeOut(BaseModel):
    enrollments: int = Field(description="people (enrollments) in the trained snapshot")
    embeddings: int = Field(description="their embeddings: the comparisons a stranger gets")


class CollectionOut(BaseModel):
    id: str
    name: str
    enrollments: list[str] = Field(
        description="the members' enrollment ids, oldest membership first: all of them when "
        "there are at most enrollments_limit (default 1000), otherwise the page that "
        "enrollments_limit and enrollments_offset choose"
    )
    enrollment_count: int = Field(description="how many enrollments the collection holds")
    unknown: bool
    created: str
    updated: str
    owner: str
    status: str = Field(description="untrained, training, ready or stale")
    trained_at: str | None
    size: SnapshotSizeOut | None = Field(description="the trained snapshot's size; null untrained")
    identify_threshold: float | None = Field(
        description="the score identify requires of the best enrollment in this collection: "
        "computed at training from the snapshot's size so that a stranger is named as someone "
        "with probability target_fpir"
    )
    target_fpir: float | None = Field(
        description="the false-positive identification rate the threshold holds "
        "(FACEGATE_IDENTIFY_TARGET_FPIR, 0.01; FACEGATE_UNKNOWNS_TARGET_FPIR, 0.001, for "
        "unknown: true); null when the recogniser ships no impostor-tail model and the fixed "
        "FACEGATE_IDENTIFY_THRESHOLD applies"
    )
    expected_tpir: float | None = Field(
        description="the expected rate at which a probe of an enrolled person scores above the "
        "threshold (from LFW development data; before rank errors)"
    )
    warning: str | None = Field(
        description="set when the target FPIR leaves a low expected TPIR, with the figure"
    )
    classifier_url: str
    label_encoder: str


class RecipeCountOut(BaseModel):
    recipe: str = Field(description="the embedding space (recogniser, version, alignment)")
    tta: str | None = Field(description="the test-time augmentation that averaged them")
    images: int = Field(description="how many of the enrollment's embeddings it made")


class EnrollmentOut(BaseModel):
    id: str
    name: str | None
    images: int = Field(description="stored embeddings: one per enrolled image")
    collections: list[str] = Field(description="ids of the collections holding it")
    recipes: list[RecipeCountOut] = Field(
        description="embeddings by recipe; only the running engine's recipe is compared"
    )
    created: str
    updated: str


class EnrollmentPageOut(BaseModel):
    enrollments: list[EnrollmentOut] = Field(description="oldest first")
    total: int = Field(description="all enrollments of this key")
    limit: int
    offset: int


class CandidateOut(BaseModel):
    key: str
    name: str | None
    score: float


_SCORE = (
    "the 1:1 calibrated similarity in [0, 1] of the face and the best enrollment (as /v1/match "
    "scores it), whether or not it was identified; 0 for an empty collection"
)
_UNKNOWN = (
    "the probability that the person is not in the collection at all, given the best distance "
    "and the collection's size (even prior odds of enrolled vs stranger); in a large collection "
    "a score that one comparison would call a match is weak evidence, because some stranger "
    "reaches it often"
)


class IdentifiedFaceOut(BaseModel):
    bounding_box: list[float]
    name: str | None = Field(description="the identified enrollment's name; null for unknown")
    key: str | None = Field(description="the identified enrollment id; null for unknown")
    score: float = Field(description=_SCORE)
    unknown_probability: float = Field(description=_UNKNOWN)
    candidates: list[CandidateOut] | None = None


class IdentifyOut(BaseModel):
    name: str | None = Field(
        description="the identified enrollment's name; null for unknown (the best score is "
        "below the collection's identify_threshold, see GET /v1/collection)"
    )
    key: str | None = Field(description="the identified enrollment id; null for unknown")
    score: float = Field(description=_SCORE)
    unknown_probability: float = Field(description=_UNKNOWN)
    candidates: list[CandidateOut] | None = None
    faces: list[IdentifiedFaceOut] | None = None
