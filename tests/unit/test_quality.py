from __future__ import annotations

import numpy as np
import pytest

from facegate.config import Settings
from facegate.engine.quality import estimate_quality

FRONTAL = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], np.float32)


def _image(blur: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    return np.full_like(noise, 128) if blur else noise


def test_frontal_face_is_level() -> None:
    quality = estimate_quality(_image(), (20, 20, 100, 110), FRONTAL)
    assert abs(quality.yaw_deg) < 1 and abs(quality.pitch_deg) < 1
    assert quality.eye_distance_px == 40
    assert quality.problems(min_eye_distance=20, max_abs_yaw=45) == []


def test_nose_off_centre_reads_as_yaw() -> None:
    turned = FRONTAL.copy()
    turned[2, 0] = 84  # past the right eye: a face turned well beyond three-quarters
    quality = estimate_quality(_image(), (20, 20, 100, 110), turned)
    assert quality.yaw_deg > 50
    assert "turned" in quality.problems(min_eye_distance=20, max_abs_yaw=50)[0]


def _turned_face(yaw_deg: float) -> np.ndarray:
    """The 5 points of a mean 3-D face (eyes 150 units off the midline and 135 behind the nose
    tip, as in the 68-point head-pose model) turned by ``yaw_deg``, projected orthographically."""
    model = np.array(
        [[-150, -90, -135], [150, -90, -135], [0, 0, 0], [-110, 100, -125], [110, 100, -125]],
        np.float64,
    )
    theta = np.radians(yaw_deg)
    rotation = np.array(
        [[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]]
    )
    projected = (model @ rotation.T)[:, :2] * 0.2 + 64
    return projected.astype(np.float32)


@pytest.mark.parametrize("yaw", [0.0, 15.0, 30.0, 45.0, 60.0])
def test_yaw_follows_the_turn_without_saturating(yaw: float) -> None:
    quality = estimate_quality(_image(), (20, 20, 108, 108), _turned_face(yaw))
    assert quality.yaw_deg == pytest.approx(yaw, abs=5)


def test_a_three_quarter_view_passes_the_default_gate() -> None:
    quality = estimate_quality(_image(), (20, 20, 108, 108), _turned_face(35))
    settings = Settings()
    assert (
        quality.problems(
            min_eye_distance=settings.min_enroll_eye_distance,
            max_abs_yaw=settings.max_enroll_abs_yaw,
        )
        == []
    )


def test_small_face_and_flat_image_are_flagged() -> None:
    small = FRONTAL * 0.2
    quality = estimate_quality(_image(blur=True), (4, 4, 20, 22), small)
    assert quality.sharpness == 0.0
    assert "too small" in quality.problems(min_eye_distance=20, max_abs_yaw=45)[0]
