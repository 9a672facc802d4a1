"""Turning what callers hold (a path, bytes, a PIL image, a numpy array) into image bytes."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from facegate.client._errors import InvalidInput

ImageInput: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | NDArray[np.uint8]
)
"""A path (``str`` is always a path, never base64), encoded image bytes (JPEG, PNG, WebP), a
PIL image, or a numpy array: ``uint8``, height × width (grey) or height × width × 3 (RGB) or × 4
(RGBA)."""

JPEG_QUALITY = 95


def image_bytes(image: ImageInput) -> bytes:
    """Encoded bytes as the server reads them. Files and bytes are sent as they are (the server
    applies EXIF orientation); pixels are encoded as JPEG, or PNG when they have transparency."""
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image)
    if isinstance(image, str | os.PathLike):
        return Path(image).read_bytes()
    if isinstance(image, Image.Image):
        return _encode(image)
    if isinstance(image, np.ndarray):
        return _encode(_from_array(image))
    raise InvalidInput(
        f"cannot send a {type(image).__name__} as an image: pass a path, bytes, a PIL image "
        "or a numpy uint8 array"
    )


def content_type(data: bytes) -> str:
    """The media type of encoded image bytes, from their signature."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    # Anything else is still the server's to judge (it answers invalid_image precisely).
    return "application/octet-stream"


def _from_array(array: NDArray[np.uint8]) -> Image.Image:
    if array.dtype != np.uint8:
        raise InvalidInput(f"a numpy image must be uint8 (RGB 0-255), not {array.dtype}")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        # Pillow infers L, RGB or RGBA from a uint8 array's shape.
        return Image.fromarray(np.ascontiguousarray(array))
    raise InvalidInput(
        f"a numpy image must be H×W (grey), H×W×3 (RGB) or H×W×4 (RGBA), not {array.shape}"
    )


def _encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # JPEG has no alpha; PNG keeps it and the server composes it as it decodes.
        image.save(buffer, format="PNG")
    else:
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
