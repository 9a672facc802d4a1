"""MTCNN's box arithmetic, checked on hand-made numbers (no networks)."""

from __future__ import annotations

import numpy as np

from facegate.engine.detect import _apply_regression, _crops, _nms, _pyramid_scales, _square


def test_pyramid_starts_at_min_face_and_stops_at_cell_size() -> None:
    scales = _pyramid_scales(100, 200, 20)
    assert scales[0] == 12 / 20
    assert all(100 * s >= 12 for s in scales)
    assert 100 * scales[-1] * 0.709 < 12


def test_nms_keeps_best_of_overlapping_boxes() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 10, 0.9],
            [1, 1, 11, 11, 0.95],
            [50, 50, 60, 60, 0.5],
        ],
        np.float32,
    )
    assert _nms(boxes, 0.5).tolist() == [1, 2]


def test_nms_min_mode_drops_nested_box() -> None:
    boxes = np.array([[0, 0, 100, 100, 0.9], [10, 10, 30, 30, 0.8]], np.float32)
    assert _nms(boxes, 0.7, by_min=True).tolist() == [0]
    assert _nms(boxes, 0.7).tolist() == [0, 1]


def test_square_keeps_centre() -> None:
    boxes = np.array([[10, 20, 30, 60, 1.0]], np.float32)
    out = _square(boxes)
    assert out[0, 2] - out[0, 0] == out[0, 3] - out[0, 1] == 40


def test_regression_scales_with_box_size() -> None:
    boxes = np.array([[0, 0, 9, 9, 1.0]], np.float32)
    out = _apply_regression(boxes, np.array([[0.1, 0.0, -0.1, 0.0]], np.float32))
    assert np.allclose(out[0, :4], [1, 0, 8, 9])


def test_crops_pad_outside_the_image_with_zeros() -> None:
    image = np.ones((20, 20, 3), np.float32)
    batch = _crops(image, np.array([[-10, -10, 9, 9, 1.0]], np.float32), 24)
    assert batch.shape == (1, 3, 24, 24)
    assert batch[0, :, 0, 0].sum() == 0 and batch[0, :, -1, -1].sum() == 3
