from __future__ import annotations

import numpy as np

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
    turned[2, 0] = 78
    quality = estimate_quality(_image(), (20, 20, 100, 110), turned)
    assert quality.yaw_deg > 45
    assert "turned" in quality.problems(min_eye_distance=20, max_abs_yaw=45)[0]


def test_small_face_and_flat_image_are_flagged() -> None:
    small = FRONTAL * 0.2
    quality = estimate_quality(_image(blur=True), (4, 4, 20, 22), small)
    assert quality.sharpness == 0.0
    assert "too small" in quality.problems(min_eye_distance=20, max_abs_yaw=45)[0]
