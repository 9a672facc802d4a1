"""Face detection for /facedetect: every face, largest first, with quality figures."""

from __future__ import annotations

from facegate.engine.types import DetectedFace
from facegate.service.images import FaceReader


class Detection:
    def __init__(self, reader: FaceReader) -> None:
        self._reader = reader

    def detect(self, image: bytes, *, landmarks68: bool = False) -> list[DetectedFace]:
        decoded = self._reader.decode("img", image)
        return self._reader.engine.detect(decoded, landmarks68=landmarks68, quality=True)
