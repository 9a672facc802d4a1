"""Plain data passed between the engine's stages and to its callers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class FaceQuality:
    eye_distance_px: float  # inter-ocular distance in pixels of the image as sent
    sharpness: float  # variance of the Laplacian on the aligned chip; < ~30 is blurry
    yaw_deg: float  # + = face turned to its left (towards the image's right)
    pitch_deg: float  # + = face tilted down
    face_size_px: float  # the box's shorter side

    def problems(self, *, min_eye_distance: float, max_abs_yaw: float) -> list[str]:
        """Reasons this face is unusable for enrollment; empty when it is fine."""
        reasons = []
        if self.eye_distance_px < min_eye_distance:
            reasons.append(
                f"face too small (eyes {self.eye_distance_px:.0f} px apart, "
                f"need {min_eye_distance:.0f})"
            )
        if abs(self.yaw_deg) > max_abs_yaw:
            reasons.append(f"face turned too far ({self.yaw_deg:.0f} degrees)")
        return reasons


@dataclass(frozen=True)
class DetectedFace:
    """One face: box, confidence and the 5 points in the seed's order, in image pixels.

    points: left eye, right eye, nose, left mouth corner, right mouth corner, as (x, y) rows.
    "Left" is the subject's left as seen in the image, i.e. the point with the smaller x
    in an upright frontal face, as MTCNN and the seed define it.
    """

    box: tuple[float, float, float, float]
    confidence: float
    points: NDArray[np.float32]  # 5 x 2
    landmarks68: NDArray[np.float32] | None = None  # 68 x 2, on request
    quality: FaceQuality | None = None

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    @property
    def side(self) -> float:
        """The box's longer side: a face's size in pixels."""
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, y2 - y1)

    @property
    def points_flat(self) -> list[float]:
        """The seed's layout: five x's then five y's."""
        return [float(v) for v in self.points[:, 0]] + [float(v) for v in self.points[:, 1]]


# Faces whose areas are within this fraction of the largest count as equally large.
SAME_SIZE_AREA_RATIO = 0.8


def by_prominence(faces: list[DetectedFace], width: int, height: int) -> list[DetectedFace]:
    """Faces largest first, except that among faces about as large as the largest (area within
    ``SAME_SIZE_AREA_RATIO``) the one nearest the image's centre comes first.

    Where one face is wanted (enroll, match, identify), it is the first of these: the largest,
    and of two neighbours of one size, the one the picture is centred on. On LFW the plain largest
    face was a neighbour of the labelled person in 11 of 3,443 development images (pairsDevTrain),
    this rule in 2 (BENCHMARKS.md).
    """
    ordered = sorted(faces, key=lambda f: f.area, reverse=True)
    if len(ordered) < 2:
        return ordered
    peers = [f for f in ordered if f.area >= SAME_SIZE_AREA_RATIO * ordered[0].area]

    def off_centre(face: DetectedFace) -> float:
        x1, y1, x2, y2 = face.box
        return float(
            np.hypot(((x1 + x2) / 2 - width / 2) / width, ((y1 + y2) / 2 - height / 2) / height)
        )

    first = min(peers, key=off_centre)
    return [first, *(f for f in ordered if f is not first)]
