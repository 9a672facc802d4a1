"""MTCNN's box arithmetic, checked on hand-made numbers (no networks)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from numpy.typing import NDArray

from facegate.engine.detect import (
    CASCADE_BATCH,
    DetectorConfig,
    MTCNNDetector,
    _apply_regression,
    _crops,
    _nms,
    _pyramid_scales,
    _run_batched,
    _square,
)
from facegate.engine.types import DetectedFace


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


def test_crops_match_a_zero_padded_cut_inside_across_and_outside_the_border() -> None:
    rng = np.random.default_rng(3)
    image = rng.standard_normal((40, 50, 3)).astype(np.float32)
    padded = np.zeros((140, 150, 3), np.float32)
    padded[50:90, 50:100] = image
    boxes = np.array(
        [[5, 6, 24, 30, 1], [-8, 30, 15, 52, 1], [40, -5, 60, 12, 1], [70, 70, 90, 90, 1]],
        np.float32,
    )
    batch = _crops(image, boxes, 24)
    for crop, (x1, y1, x2, y2) in zip(batch, boxes[:, :4].astype(int), strict=True):
        if x1 >= 50 or y1 >= 40:  # wholly outside: an all-zero crop
            assert not crop.any()
            continue
        cut = padded[y1 + 50 : y2 + 51, x1 + 50 : x2 + 51]
        expected = cv2.resize(cut, (24, 24), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
        assert np.array_equal(crop, expected)


class _RecordingSession:
    """Stands in for an ONNX Runtime session: two outputs computed per crop."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def run(self, _: None, feeds: dict[str, NDArray[np.float32]]) -> list[NDArray[np.float32]]:
        crops = feeds["image"]
        self.batch_sizes.append(len(crops))
        return [crops.sum(axis=(1, 2, 3))[:, None], crops.max(axis=(2, 3))]


def test_cascade_stages_run_in_batches_and_keep_crop_order() -> None:
    crops = np.random.default_rng(4).standard_normal((37, 3, 24, 24)).astype(np.float32)
    session = _RecordingSession()
    sums, maxima = _run_batched(session, crops)  # type: ignore[arg-type]
    full, rest = divmod(37, CASCADE_BATCH)
    assert session.batch_sizes == [CASCADE_BATCH] * full + [rest]
    assert np.array_equal(sums[:, 0], crops.sum(axis=(1, 2, 3)))
    assert np.array_equal(maxima, crops.max(axis=(2, 3)))


def _face(side: float) -> DetectedFace:
    return DetectedFace(box=(0.0, 0.0, side, side), confidence=0.99, points=np.zeros((5, 2)))


class _ScriptedDetector(MTCNNDetector):
    """The cascade replaced by a script: which faces each pyramid (by its finest scale) finds."""

    def __init__(self, found: Callable[[float], list[DetectedFace]]) -> None:
        super().__init__(None, None, None, DetectorConfig())  # type: ignore[arg-type]
        self.found = found
        self.passes: list[float] = []

    def _cascade(
        self,
        image: NDArray[np.float32],
        scales: list[float],
        levels: dict[float, NDArray[np.float32]],
    ) -> list[DetectedFace]:
        self.passes.append(scales[0])
        return self.found(scales[0])


def test_largest_only_accepts_a_coarse_pass_only_within_its_size_range() -> None:
    image = np.zeros((1000, 1000, 3), np.uint8)  # passes: faces >= 200 px, >= 50 px, all
    full = _pyramid_scales(1000, 1000, 20)[0]

    # The first pass finds a 150-px face, below its 200-px range: a larger face could be
    # hiding there, so the next pass decides (and finds a 180-px one).
    detector = _ScriptedDetector(lambda scale: [_face(150.0)] if scale < 0.06 else [_face(180.0)])
    assert detector.detect(image, largest_only=True)[0].side == 180.0
    assert len(detector.passes) == 2

    # Within range at once: one pass, a fraction of the pyramid.
    detector = _ScriptedDetector(lambda scale: [_face(300.0)])
    assert detector.detect(image, largest_only=True)[0].side == 300.0
    assert detector.passes[0] < full / 5

    # Nothing in the coarse passes: the whole pyramid.
    detector = _ScriptedDetector(lambda scale: [_face(30.0)] if scale == full else [])
    assert detector.detect(image, largest_only=True)[0].side == 30.0
    assert detector.passes[-1] == full and len(detector.passes) == 3
