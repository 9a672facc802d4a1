"""Real test faces from images that installed packages ship, and helpers to encode them.

Nothing here comes from ../shared/facedata, so the suite passes on a fresh machine without it.

People available:
- Grace Hopper: matplotlib's ``grace_hopper.jpg`` (one frontal face).
- Eileen Collins: scikit-image's ``astronaut`` (one face).
- Six people around a table: insightface's ``t1.jpg`` (read from the wheel's data folder without
  importing insightface).
"""

from __future__ import annotations

import base64
import importlib.util
import io
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageEnhance


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def grace_hopper_rgb() -> NDArray[np.uint8]:
    path = _package_dir("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


@cache
def astronaut_rgb() -> NDArray[np.uint8]:
    from skimage import data

    return np.asarray(data.astronaut(), dtype=np.uint8)


@cache
def group_photo_rgb() -> NDArray[np.uint8]:
    path = _package_dir("insightface") / "data" / "images" / "t1.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


def group_photo_bytes() -> bytes:
    return (_package_dir("insightface") / "data" / "images" / "t1.jpg").read_bytes()


def group_member_rgb(index: int) -> NDArray[np.uint8]:
    """One person of the group photo, cropped generously around a known face position."""
    # Face centres (x, y) in t1.jpg, measured once with the detector; crops are 260 px squares.
    centres = [(517, 337), (111, 328), (960, 130), (320, 205), (791, 406), (1179, 336)]
    x, y = centres[index]
    image = group_photo_rgb()
    h, w = image.shape[:2]
    x1, y1 = max(0, x - 130), max(0, y - 130)
    return np.ascontiguousarray(image[y1 : min(h, y + 130), x1 : min(w, x + 130)])


def encode(rgb: NDArray[np.uint8], fmt: str = "JPEG", quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(rgb)
    if fmt == "JPEG":
        image.save(buffer, format=fmt, quality=quality)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def augmented(rgb: NDArray[np.uint8], variant: int) -> NDArray[np.uint8]:
    """Deterministic photometric/geometric variants of one photo: a stand-in for new photos."""
    image = Image.fromarray(rgb)
    if variant % 4 == 1:
        image = ImageEnhance.Brightness(image).enhance(0.75)
    elif variant % 4 == 2:
        image = image.rotate(8, resample=Image.Resampling.BILINEAR, expand=False)
    elif variant % 4 == 3:
        image = ImageEnhance.Contrast(image).enhance(1.3).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = np.asarray(image)
    if variant >= 4:
        scale = 0.8
        out = cv2.resize(out, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(out)


@cache
def phone_photo_bytes(width: int = 4000, height: int = 3000) -> bytes:
    """A phone-sized JPEG (12 Mpx, ~2 MB): the group photo upscaled, six faces."""
    rgb = cv2.resize(group_photo_rgb(), (width, height), interpolation=cv2.INTER_CUBIC)
    return encode(np.ascontiguousarray(rgb), quality=90)
