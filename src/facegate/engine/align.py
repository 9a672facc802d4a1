"""Face chips for the descriptor network, and dlib's landmark predictors.

dlib's ResNet was trained on 150x150 chips cut by ``get_face_chip`` from its 5-point shape
(eye corners and the base of the nose), with 25 % padding. The predictor is run inside the MTCNN
box; the box is first mapped to the framing dlib's own detector gives, which the predictor was
trained on (see ``mtcnn_box_to_dlib_rect``).
"""

from __future__ import annotations

import dlib
import numpy as np
from numpy.typing import NDArray

# Names the alignment recipe, so cached evaluation descriptors are keyed by it.
ALIGNMENT = "shape5-top8"
CHIP_SIZE = 150
CHIP_PADDING = 0.25


def mtcnn_box_to_dlib_rect(box: tuple[float, float, float, float]) -> dlib.rectangle:
    # MTCNN boxes reach from above the brows to below the chin; dlib's detector boxes are a
    # little tighter and lower. Shrinking the top slightly keeps the predictor in its habitat.
    x1, y1, x2, y2 = box
    height = y2 - y1
    top = y1 + 0.08 * height
    return dlib.rectangle(round(x1), round(top), round(x2), round(y2))


def shape_points(shape: dlib.full_object_detection) -> NDArray[np.float32]:
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def face_chip(
    rgb: NDArray[np.uint8], predictor: dlib.shape_predictor, box: tuple[float, float, float, float]
) -> NDArray[np.uint8]:
    shape = predictor(rgb, mtcnn_box_to_dlib_rect(box))
    chip = dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    return np.asarray(chip, dtype=np.uint8)


def landmarks68(
    rgb: NDArray[np.uint8], predictor: dlib.shape_predictor, box: tuple[float, float, float, float]
) -> NDArray[np.float32]:
    return shape_points(predictor(rgb, mtcnn_box_to_dlib_rect(box)))
