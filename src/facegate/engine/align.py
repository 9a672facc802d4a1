"""Face chips for the descriptor networks, and dlib's landmark predictors.

SFace (and ArcFace-style networks) read a 112x112 chip cut by the similarity transform that maps
the detector's 5 points onto a fixed template (``arcface_chips``).

dlib's ResNet was trained on 150x150 chips cut by ``get_face_chip`` from its 5-point shape
(eye corners and the base of the nose), with 25 % padding. The predictor is run inside the MTCNN
box; the box is first mapped to the framing dlib's own detector gives, which the predictor was
trained on (see ``mtcnn_box_to_dlib_rect``; measured in BENCHMARKS.md).

Test-time augmentation cuts several *views* of the same aligned face: the chip itself and
slightly zoomed in and out (a fixed, deterministic set), each also mirrored. Averaging their
descriptors evens out landmark noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import dlib
import numpy as np
from numpy.typing import NDArray

from facegate.config import TTA

# Names the alignment recipe, so cached evaluation descriptors are keyed by it.
ALIGNMENT = "shape5-top8-v2"
CHIP_SIZE = 150
CHIP_PADDING = 0.25


@dataclass(frozen=True)
class View:
    scale: float  # of the chip's extent: > 1 shows more around the face
    mirrored: bool


# Ordered so each mode's views are a prefix-free subset of the full set (see VIEW_INDEX).
ALL_VIEWS = (
    View(1.0, False),
    View(1.05, False),
    View(0.95, False),
    View(1.0, True),
    View(1.05, True),
    View(0.95, True),
)
VIEW_INDEX: dict[str, tuple[int, ...]] = {
    "none": (0,),
    "flip": (0, 3),
    "multi": (0, 1, 2, 3, 4, 5),
}


def views_for(mode: TTA) -> tuple[View, ...]:
    return tuple(ALL_VIEWS[i] for i in VIEW_INDEX[mode])


def mtcnn_box_to_dlib_rect(box: tuple[float, float, float, float]) -> dlib.rectangle:
    # MTCNN boxes reach from above the brows to below the chin; dlib's detector boxes are a
    # little tighter and lower. Shrinking the top slightly keeps the predictor in its habitat.
    x1, y1, x2, y2 = box
    height = y2 - y1
    top = y1 + 0.08 * height
    return dlib.rectangle(round(x1), round(top), round(x2), round(y2))


def shape_points(shape: dlib.full_object_detection) -> NDArray[np.float32]:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def face_chips(
    rgb: NDArray[np.uint8],
    predictor: dlib.shape_predictor,
    box: tuple[float, float, float, float],
    views: Sequence[View] = (View(1.0, False),),
) -> list[NDArray[np.uint8]]:
    """One 150x150 chip per view of the face in ``box``."""
    shape = predictor(rgb, mtcnn_box_to_dlib_rect(box))
    base = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    scales = sorted({v.scale for v in views})
    details = [_scaled(base, s) for s in scales]
    chips = dict(zip(scales, dlib.extract_image_chips(rgb, details), strict=True))
    out = []
    for view in views:
        chip = np.asarray(chips[view.scale], dtype=np.uint8)
        out.append(np.ascontiguousarray(chip[:, ::-1]) if view.mirrored else chip)
    return out


def _scaled(details: dlib.chip_details, scale: float) -> dlib.chip_details:
    if scale == 1.0:
        return details
    rect = details.rect
    cx, cy = (rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2
    half_w, half_h = rect.width() * scale / 2, rect.height() * scale / 2
    scaled = dlib.drectangle(cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    return dlib.chip_details(scaled, dlib.chip_dims(CHIP_SIZE, CHIP_SIZE), details.angle)


# Where the 5 points (the seed's order: the image's left eye first) sit on a 112x112 chip:
# the template of InsightFace's ArcFace alignment, which SFace was trained with.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_SIZE = 112


def similarity_transform(
    source: NDArray[np.floating], target: NDArray[np.floating]
) -> NDArray[np.float64]:
    """The 2x3 rotation + uniform scale + translation mapping ``source`` points onto ``target``
    in the least-squares sense (Umeyama, 1991), never a reflection."""
    src = np.asarray(source, np.float64)
    dst = np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = float((src_c**2).sum() / len(src))
    scale = float((singular * sign).sum() / variance) if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.column_stack([scale * rotation, translation])


def arcface_chips(
    rgb: NDArray[np.uint8], points: NDArray[np.float32], views: Sequence[View] = (View(1.0, False),)
) -> list[NDArray[np.uint8]]:
    """One 112x112 RGB chip per view, aligned on the 5 points; a view's scale > 1 shows more
    around the face (the template shrinks about the chip's centre)."""
    centre = ARCFACE_SIZE / 2
    chips: dict[float, NDArray[np.uint8]] = {}
    out = []
    for view in views:
        if view.scale not in chips:
            template = (ARCFACE_TEMPLATE - centre) / view.scale + centre
            matrix = similarity_transform(points, template)
            chips[view.scale] = np.asarray(
                cv2.warpAffine(rgb, matrix, (ARCFACE_SIZE, ARCFACE_SIZE), flags=cv2.INTER_LINEAR),
                np.uint8,
            )
        chip = chips[view.scale]
        out.append(np.ascontiguousarray(chip[:, ::-1]) if view.mirrored else chip)
    return out


def landmarks68(
    rgb: NDArray[np.uint8], predictor: dlib.shape_predictor, box: tuple[float, float, float, float]
) -> NDArray[np.float32]:
    return shape_points(predictor(rgb, mtcnn_box_to_dlib_rect(box)))
