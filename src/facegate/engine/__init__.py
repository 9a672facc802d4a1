"""The face engine: decode, detect, landmarks, align, embed, score, quality. No HTTP here."""

from facegate.engine.decode import DecodedImage, decode_image
from facegate.engine.types import DetectedFace, FaceQuality

__all__ = ["DecodedImage", "DetectedFace", "FaceQuality", "decode_image"]
