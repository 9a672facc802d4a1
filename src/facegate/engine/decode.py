"""Bytes → RGB array, refusing bad input with a precise error before it costs much.

Memory per image is bounded, not just checked:

- The pixel limit counts the pixels that will actually be decoded and is checked from the
  header, before any pixel data is decoded, so a small file that claims a huge canvas (a
  decompression bomb) is refused cheaply. Decoding costs at most ~7 bytes per counted pixel
  (Pillow's 4-byte RGBX buffer plus the 3-byte array handed on), so the limit bounds the bytes.
- A JPEG far larger than detection needs (``target_side``, the detector's working size) is
  decoded at 1/2, 1/4 or 1/8 of its resolution by libjpeg itself (Pillow's draft mode): a
  4000x3000 phone photo becomes 2000x1500 without its full-size pixels ever existing.
- The decoded size (width x height x bands, after draft mode) is compared with the bytes sent,
  from the header too: above a floor, an image may decode to at most a bounded multiple of its
  size (``max_expansion``), so a request's memory follows its body. PNG and WebP have no reduced
  decode in Pillow, so a small file of a huge canvas (issue 12: a 131 KB 6300x6300 PNG cost
  +294 MB) is refused with what to send instead.
- Nothing converts a whole image to floating point, and no full-size copy is made beyond the
  two above: conversions and copies run in bands of about a megapixel.

A :class:`DecodedImage` knows how its pixels map onto the image as sent (``scale``, ``origin``),
so faces are reported in the coordinates of the upload whatever resolution was decoded.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from facegate.errors import (
    EmptyImage,
    ImageTooExpansive,
    ImageTooLarge,
    ImageTooManyPixels,
    InvalidImage,
    TruncatedImage,
)

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
# Rows copied or converted at a time are sized to about this many pixels: the temporaries of a
# conversion stay a few MB whatever the image's size.
BAND_PIXELS = 1 << 20
# Draft mode's reductions (libjpeg scales the DCT by 1/2, 1/4 or 1/8).
_DRAFT_FACTORS = (8, 4, 2)
_EXIF_ORIENTATION = 0x0112
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass(frozen=True)
class DecodedImage:
    """Decoded pixels and where they sit in the image as sent (after EXIF orientation).

    A pixel (x, y) of ``rgb`` covers the upload's pixels from ``origin + (x, y) * scale``:
    ``scale`` is 2, 4 or 8 for a JPEG decoded at reduced resolution, ``origin`` non-zero for a
    crop (:meth:`around`). Faces are always given in the upload's coordinates.
    """

    rgb: NDArray[np.uint8]  # H x W x 3
    format: str
    scale: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def to_pixels(self, xy: NDArray[np.float32]) -> NDArray[np.float32]:
        """Upload coordinates (N x 2) → coordinates in ``rgb``."""
        if self.scale == 1.0 and self.origin == (0.0, 0.0):
            return xy
        origin = np.asarray(self.origin, np.float32)
        return ((xy - origin) / np.float32(self.scale)).astype(np.float32)

    def to_sent(self, xy: NDArray[np.float32]) -> NDArray[np.float32]:
        """Coordinates in ``rgb`` (N x 2) → upload coordinates."""
        if self.scale == 1.0 and self.origin == (0.0, 0.0):
            return xy
        origin = np.asarray(self.origin, np.float32)
        return (xy * np.float32(self.scale) + origin).astype(np.float32)

    def around(self, box: tuple[float, float, float, float], margin: float = 1.0) -> DecodedImage:
        """The part of the image within ``margin`` box sizes of ``box`` (upload coordinates), as
        a copy in the same coordinate system: what alignment needs of one face, without the rest
        of a large photo."""
        x1, y1, x2, y2 = box
        pad = margin * max(x2 - x1, y2 - y1)
        corners = self.to_pixels(np.array([[x1 - pad, y1 - pad], [x2 + pad, y2 + pad]], np.float32))
        left, top = (max(0, math.floor(v)) for v in corners[0])
        right = min(self.width, math.ceil(corners[1][0]))
        bottom = min(self.height, math.ceil(corners[1][1]))
        if right <= left or bottom <= top:
            return self
        origin = self.to_sent(np.array([[left, top]], np.float32))[0]
        return DecodedImage(
            rgb=np.ascontiguousarray(self.rgb[top:bottom, left:right]),
            format=self.format,
            scale=self.scale,
            origin=(float(origin[0]), float(origin[1])),
        )


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    target_side: int = 0,
    max_expansion: float = 0.0,
    expansion_floor_bytes: int = 0,
) -> DecodedImage:
    """Decode ``data``; a JPEG whose longer side is at least twice ``target_side`` (0: never) is
    decoded at the smallest reduced resolution whose longer side still reaches it.

    An image may decode to ``expansion_floor_bytes``, or to ``max_expansion`` times
    ``len(data)`` if that is more (``max_expansion`` 0: no check). A JPEG over that is decoded at
    a further reduced resolution that fits; anything still over it is refused
    (:class:`ImageTooExpansive`) before any pixel is decoded."""
    if not data:
        raise EmptyImage("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes} bytes")
    image = _open(data, max_pixels)
    sent_size = image.size
    allowed = _allowed_bytes(len(data), max_expansion, expansion_floor_bytes)
    scale = _draft(image, target_side, allowed)
    _check_pixels(sent_size, image.size, max_pixels)
    _check_expansion(image, sent_size, len(data), allowed, max_expansion, expansion_floor_bytes)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise TruncatedImage(f"the image data is truncated or corrupt ({exc})") from exc
    fmt = str(image.format)
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    rgb = _to_rgb(image)
    del image  # Pillow's buffer goes before the oriented copy is made
    return DecodedImage(rgb=_oriented(rgb, orientation), format=fmt, scale=scale)


def decoded_size(
    data: bytes, *, target_side: int = 0, max_expansion: float = 0.0, expansion_floor_bytes: int = 0
) -> tuple[tuple[int, int], tuple[int, int], int]:
    """(size sent, size decoded, decoded bytes) that :func:`decode_image` would work with, from
    the header alone (nothing is decoded, no limit but the expansion's draft is applied)."""
    image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    sent = image.size
    _draft(image, target_side, _allowed_bytes(len(data), max_expansion, expansion_floor_bytes))
    return sent, image.size, decoded_bytes(image)


def _open(data: bytes, max_pixels: int) -> Image.Image:
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
    return image


def _draft(image: Image.Image, target_side: int, allowed_bytes: float = math.inf) -> float:
    """Ask libjpeg for a reduced decode; the reduction factor (1 when none).

    The factor keeps the longer side at least ``target_side`` (detection's working size), unless
    that would decode to more than ``allowed_bytes`` (the expansion limit): then it is the
    smallest that fits, 8 at most (a JPEG is never refused for its expansion while a reduced
    decode can hold it)."""
    width, height = image.size
    if image.format != "JPEG":
        return 1.0
    factor = 1
    if target_side > 0 and max(width, height) >= 2 * target_side:
        factor = next(f for f in _DRAFT_FACTORS if max(width, height) >= f * target_side)
    bands = max(3, len(image.getbands()))
    while factor < 8 and math.ceil(width / factor) * math.ceil(height / factor) * bands > (
        allowed_bytes
    ):
        factor *= 2
    if factor == 1:
        return 1.0
    # draft() picks the largest reduction that keeps the image at least this size.
    wanted = (max(1, math.ceil(width / factor)), max(1, math.ceil(height / factor)))
    try:
        image.draft(image.mode if image.mode in ("L", "RGB", "CMYK") else "RGB", wanted)
    except (OSError, ValueError):  # an odd JPEG: decode it whole, the pixel limit still holds
        return 1.0
    return width / image.size[0]


def _check_pixels(sent: tuple[int, int], decoded: tuple[int, int], max_pixels: int) -> None:
    pixels = decoded[0] * decoded[1]
    if pixels <= max_pixels:
        return
    size = f"{sent[0]}x{sent[1]}"
    if decoded != sent:
        size += f", decoded at {decoded[0]}x{decoded[1]},"
    raise ImageTooManyPixels(
        f"the image is {size} = {pixels} pixels; the limit is {max_pixels} pixels"
    )


def decoded_bytes(image: Image.Image) -> int:
    """Bytes of the pixels a decode of ``image`` yields as it stands (after any draft): width x
    height x bands, at least the three bands of the RGB array handed on."""
    width, height = image.size
    return width * height * max(3, len(image.getbands()))


def _allowed_bytes(size: int, ratio: float, floor: int) -> float:
    """Decoded bytes an image of ``size`` bytes may have (infinite when the check is off)."""
    return max(float(floor), ratio * size) if ratio > 0 else math.inf


def _check_expansion(
    image: Image.Image, sent: tuple[int, int], size: int, allowed: float, ratio: float, floor: int
) -> None:
    decoded = decoded_bytes(image)
    if decoded <= allowed:
        return
    dims = f"{sent[0]}x{sent[1]}"
    if image.size != sent:
        dims += f" (decoded at {image.size[0]}x{image.size[1]})"
    raise ImageTooExpansive(
        f"the image is {dims} pixels in {size} bytes: it decodes to {decoded} bytes, "
        f"{decoded / size:.0f} times its size; above {floor} decoded bytes an image may decode to "
        f"at most {ratio:g} times its size. Send it as a JPEG, or scaled down to at most "
        f"{_fitting_side(image, sent, allowed)} pixels on its longer side",
        setting="FACEGATE_MAX_IMAGE_EXPANSION (and FACEGATE_IMAGE_EXPANSION_FLOOR_BYTES)",
    )


def _fitting_side(image: Image.Image, sent: tuple[int, int], allowed: float) -> int:
    """The longer side at which this image, scaled with its aspect ratio, decodes within
    ``allowed`` bytes (about: its file would shrink too)."""
    decoded = decoded_bytes(image)
    shrink = math.sqrt(allowed / decoded)
    return max(1, math.floor(max(image.size) * shrink * max(sent) / max(image.size)))


def _bands(height: int, width: int) -> range:
    return range(0, height, max(1, BAND_PIXELS // max(1, width)))


def _to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    """An H x W x 3 uint8 array from any mode, at most one band of temporaries beside it."""
    width, height = image.size
    out = np.empty((height, width, 3), np.uint8)
    step = _bands(height, width).step
    if image.mode in _HIGH_DEPTH_MODES:
        # High bit-depth greyscale: stretch to 8 bits rather than clip.
        extrema = image.getextrema()  # (min, max) for a one-band image
        lo, hi = float(extrema[0]), float(extrema[1])  # type: ignore[arg-type]
        factor = 255.0 / (hi - lo) if hi > lo else 0.0
        for top in range(0, height, step):
            values = np.asarray(image.crop((0, top, width, min(height, top + step))), np.float32)
            grey = ((values - lo) * factor).astype(np.uint8)
            out[top : top + len(grey)] = grey[..., np.newaxis]
        return out
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, not the arbitrary colour hidden under alpha 0.
        rgba = image.convert("RGBA")
        for top in range(0, height, step):
            pixels = np.asarray(rgba.crop((0, top, width, min(height, top + step))), np.uint16)
            alpha = pixels[..., 3:]
            blended = (pixels[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
            out[top : top + len(pixels)] = blended.astype(np.uint8)
        return out
    if image.mode != "RGB":
        image = image.convert("RGB")
    for top in range(0, height, step):
        rows = image.crop((0, top, width, min(height, top + step)))
        out[top : top + rows.size[1]] = np.asarray(rows, np.uint8)
    return out


def _oriented(rgb: NDArray[np.uint8], orientation: object) -> NDArray[np.uint8]:
    """EXIF orientation applied as ``ImageOps.exif_transpose`` does, on the array."""
    views = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    view = views.get(orientation if isinstance(orientation, int) else 1)
    return rgb if view is None else np.ascontiguousarray(view(rgb))
