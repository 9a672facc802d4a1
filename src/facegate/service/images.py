"""Images as clients send them: base64 strings (tolerantly) and raw bytes, to decoded faces.

Errors name the field they concern (``img3: no face found``) and keep the engine's class, so the
status stays right (400 bad data, 413 too large, 422 no usable face).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.decode import DecodedImage
from facegate.engine.types import DetectedFace
from facegate.errors import (
    BadRequest,
    EmptyImage,
    FacegateError,
    ImageTooLarge,
    InvalidImage,
    NoFaceFound,
    PoorQualityFace,
)
from facegate.service.common import about
from facegate.service.ports import Engine

_DATA_URI = re.compile(r"^data:[\w.+/-]*(;[\w.+=-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_URLSAFE = str.maketrans("-_", "+/")


def decode_base64(value: object, field: str, *, max_bytes: int) -> bytes:
    """Standard or URL-safe base64, with or without padding, data-URI prefix and line breaks."""
    if not isinstance(value, str):
        raise BadRequest(f"{field}: expected a base64-encoded image string, got {_kind(value)}")
    text = _WHITESPACE.sub("", value)
    if text.lower().startswith("data:"):
        match = _DATA_URI.match(text)
        if match is None:
            raise InvalidImage(f"{field}: a data URI must be base64-encoded (data:...;base64,...)")
        text = text[match.end() :]
    if not text:
        raise EmptyImage(f"{field}: the image is empty")
    # Refuse before decoding: base64 carries 3 bytes in every 4 characters.
    if len(text) // 4 * 3 > max_bytes + 3:
        raise ImageTooLarge(
            f"{field}: the image is about {len(text) // 4 * 3} bytes; "
            f"the limit is {max_bytes} bytes"
        )
    text = text.translate(_URLSAFE).rstrip("=")
    if len(text) % 4 == 1:
        raise InvalidImage(f"{field}: invalid base64 (the length is impossible)")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImage(f"{field}: invalid base64 ({exc})") from exc
    if not data:
        raise EmptyImage(f"{field}: the image is empty")
    return data


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class EnrolledFace:
    field: str
    face: DetectedFace
    descriptor: NDArray[np.float32]


class FaceReader:
    """Decode, detect and embed, with the enrollment quality gate and field-named errors."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def decode(self, field: str, data: bytes) -> DecodedImage:
        try:
            return self.engine.decode(data)
        except FacegateError as exc:
            raise about(field, exc) from exc

    def largest_face(
        self, field: str, image: DecodedImage
    ) -> tuple[DetectedFace, NDArray[np.float32]]:
        # Matching has no quality gate: the figures would be computed for nothing.
        faces = self.engine.detect(image, largest_only=True, quality=False)
        if not faces:
            raise NoFaceFound(f"{field}: no face found")
        descriptor = self.engine.embed(image, faces[:1])[0]
        return faces[0], descriptor

    def enrollable_face(self, field: str, image: DecodedImage) -> DetectedFace:
        """The largest face, if it passes the enrollment quality gate."""
        faces = self.engine.detect(image, largest_only=True)
        if not faces:
            raise NoFaceFound(f"{field}: no face found")
        face = faces[0]
        if face.quality is not None:
            problems = face.quality.problems(
                min_eye_distance=self.settings.min_enroll_eye_distance,
                max_abs_yaw=self.settings.max_enroll_abs_yaw,
            )
            if problems:
                raise PoorQualityFace(f"{field}: {'; '.join(problems)}")
        return face

    def enrollable_faces(self, images: dict[str, bytes]) -> list[EnrolledFace]:
        """Every image gated, then all faces embedded in one network call.

        One image is decoded at a time and only its face's surroundings are kept for the
        embedding (``DecodedImage.around``): ten large photos in one request cost one decoded
        photo's memory, not ten. A bad image fails before any descriptor is computed.
        """
        kept: dict[str, tuple[DecodedImage, DetectedFace]] = {}
        for field, data in images.items():
            image = self.decode(field, data)
            face = self.enrollable_face(field, image)
            kept[field] = (image.around(face.box), face)
            del image
        descriptors = self.engine.embed_many(list(kept.values()))
        return [
            EnrolledFace(field, face, descriptor)
            for (field, (_, face)), descriptor in zip(kept.items(), descriptors, strict=True)
        ]
