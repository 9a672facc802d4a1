"""Cheap per-face quality figures: size, sharpness and a head-pose estimate from the 5 points.

The pose is a geometric estimate from how far the nose tip sits off the eye/mouth midline. The
nose tip stands in front of the eyes and the mouth: turned by a yaw θ, its offset grows with
depth·sin θ while the eyes' half distance shrinks with cos θ, so the offset measured in half eye
distances is ``NOSE_DEPTH_RATIO · tan θ``. (Reading it as sin θ, as an earlier version did,
saturated at 90 degrees for ordinary three-quarter views.) Good to about ten degrees: enough to
refuse a profile, not a pose regressor.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from facegate.engine.types import FaceQuality

# Where the nose tip sits between the eye line (0) and the mouth line (1) on a level frontal face.
_FRONTAL_NOSE_HEIGHT = 0.5
# How far the nose tip stands in front of the eye centres, in half inter-eye distances, in a
# mean 3-D face (the 68-point model head-pose estimators use: about 135 units in front of eye
# centres 150 units off the midline).
NOSE_DEPTH_RATIO = 0.9


def estimate_quality(
    rgb: NDArray[np.uint8], box: tuple[float, float, float, float], points: NDArray[np.float32]
) -> FaceQuality:
    left_eye, right_eye, nose, mouth_left, mouth_right = (
        points[i].astype(np.float64) for i in range(5)
    )
    eye_mid = (left_eye + right_eye) / 2
    mouth_mid = (mouth_left + mouth_right) / 2
    eye_distance = float(np.linalg.norm(right_eye - left_eye))

    # Express the nose in the face's own frame: x along the eye line, y towards the mouth.
    axis_x = (right_eye - left_eye) / max(eye_distance, 1e-6)
    axis_y = np.array([-axis_x[1], axis_x[0]])
    face_height = max(float(np.dot(mouth_mid - eye_mid, axis_y)), 1e-6)
    nose_x = float(np.dot(nose - (eye_mid + mouth_mid) / 2, axis_x)) / max(eye_distance / 2, 1e-6)
    nose_y = float(np.dot(nose - eye_mid, axis_y)) / face_height
    yaw = math.degrees(math.atan(nose_x / NOSE_DEPTH_RATIO))
    pitch = math.degrees(math.asin(float(np.clip(2 * (nose_y - _FRONTAL_NOSE_HEIGHT), -1.0, 1.0))))

    x1, y1, x2, y2 = box
    return FaceQuality(
        eye_distance_px=eye_distance,
        sharpness=_sharpness(rgb, box),
        yaw_deg=yaw,
        pitch_deg=pitch,
        face_size_px=float(min(x2 - x1, y2 - y1)),
    )


def _sharpness(rgb: NDArray[np.uint8], box: tuple[float, float, float, float]) -> float:
    """Variance of the Laplacian on the face resized to 112 px, so it does not grow with size."""
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = (round(v) for v in box)
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(x2, width), min(y2, height)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    grey = cv2.resize(grey, (112, 112), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
