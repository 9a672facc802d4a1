"""Bytes → RGB array, refusing bad input with a precise error before it costs much.

The pixel limit is checked from the header, before the pixel data is decoded, so a small file
that claims a huge canvas (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from facegate.errors import (
    EmptyImage,
    ImageTooLarge,
    ImageTooManyPixels,
    InvalidImage,
    TruncatedImage,
)

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")


@dataclass(frozen=True)
class DecodedImage:
    rgb: NDArray[np.uint8]  # H x W x 3, after EXIF orientation
    format: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    if not data:
        raise EmptyImage("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes} bytes")
    image = _open_checked(data, max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image data is truncated or corrupt ({exc})") from exc
    fmt = str(image.format)
    image = ImageOps.exif_transpose(image) or image
    return DecodedImage(rgb=_to_rgb(image), format=fmt)


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    try:
        # Pillow warns (then raises) on huge canvases at open time; either way it is ours to refuse.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooManyPixels(
            f"the image has too many pixels; the limit is {max_pixels} pixels"
        ) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage("the data is not a JPEG, PNG or WebP image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image header is truncated or corrupt ({exc})") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage("the image has no pixels")
    if width * height > max_pixels:
        raise ImageTooManyPixels(
            f"the image is {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels} pixels"
        )
    return image


def _to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # High bit-depth greyscale: stretch to 8 bits rather than clip.
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        grey = scaled.astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, not the arbitrary colour hidden under alpha 0.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
