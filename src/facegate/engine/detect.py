"""MTCNN face detection (Zhang et al., 2016) on ONNX Runtime.

Three cascaded networks: P-Net proposes boxes over an image pyramid, R-Net and O-Net refine them
on resized crops, which run in small batches (CASCADE_BATCH). Everything is deterministic: no
randomness anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from facegate.engine.types import DetectedFace, by_prominence

FloatArray = NDArray[np.float32]

PNET_CELL = 12
PNET_STRIDE = 2
PYRAMID_FACTOR = 0.709
# R-Net and O-Net crops run in batches of this many: the whole set of a large image (hundreds of
# crops) makes activations of tens of MB that spill out of the CPU caches, and one crop per call
# pays the call overhead each time. 8 was fastest for both on a 640x480 photo's 465 R-Net and
# 46 O-Net crops (`facegate bench DATA --detector`, BENCHMARKS.md).
CASCADE_BATCH = 8
# A largest-face search looks first for faces at least this fraction of the image's shorter
# side, then this one, then over the whole pyramid (see MTCNNDetector.detect, BENCHMARKS.md).
LARGEST_FACE_FRACTIONS = (0.2, 0.05)


@dataclass(frozen=True)
class DetectorConfig:
    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)


class MTCNNDetector:
    def __init__(
        self,
        pnet: ort.InferenceSession,
        rnet: ort.InferenceSession,
        onet: ort.InferenceSession,
        config: DetectorConfig,
    ) -> None:
        self._pnet, self._rnet, self._onet = pnet, rnet, onet
        self.config = config

    def detect(
        self,
        rgb: NDArray[np.uint8],
        min_face_size: int | None = None,
        *,
        largest_only: bool = False,
    ) -> list[DetectedFace]:
        """All faces in an RGB image, largest first; with ``largest_only``, just the first.

        The largest face alone is searched for coarse-to-fine: first only among faces of at
        least a fifth of the image's shorter side (the tail of the same pyramid, a fraction of
        its cost), then a twentieth, then everywhere. A pass counts only if the largest face it
        found is within its own size range; a smaller find could hide a larger face that only
        a finer pass sees.
        """
        height, width = rgb.shape[:2]
        if min(height, width) < PNET_CELL:
            return []
        normalized = (rgb.astype(np.float32) - 127.5) * (1.0 / 128.0)
        min_size = max(PNET_CELL, min_face_size or self.config.min_face_size)
        scales = _pyramid_scales(height, width, min_size)
        # P-Net's windows per pyramid level, computed once: each finer pass repeats the levels
        # of the coarser ones.
        levels: dict[float, FloatArray] = {}
        if largest_only:
            for fraction in LARGEST_FACE_FRACTIONS:
                smallest_face = min(height, width) * fraction
                coarse = [s for s in scales if s * smallest_face <= PNET_CELL]
                if len(coarse) == len(scales):
                    break  # no coarser than the full search
                faces = self._cascade(normalized, coarse, levels)
                if faces and faces[0].side >= smallest_face:
                    return faces[:1]
            return self._cascade(normalized, scales, levels)[:1]
        return self._cascade(normalized, scales, levels)

    def _cascade(
        self, image: FloatArray, scales: list[float], levels: dict[float, FloatArray]
    ) -> list[DetectedFace]:
        boxes = self._propose(image, scales, levels)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return []
        boxes, points = self._output(image, boxes)
        height, width = image.shape[:2]
        faces = [_to_face(box, pts, width, height) for box, pts in zip(boxes, points, strict=True)]
        return by_prominence(faces, width, height)

    # Stage 1: P-Net over the pyramid.
    def _propose(
        self, image: FloatArray, scales: list[float], levels: dict[float, FloatArray]
    ) -> FloatArray:
        for scale in scales:
            if scale not in levels:
                levels[scale] = self._pnet_level(image, scale)
        per_scale = [levels[scale] for scale in scales if len(levels[scale])]
        if not per_scale:
            return np.zeros((0, 9), np.float32)
        boxes = np.concatenate(per_scale)
        boxes = boxes[_nms(boxes, 0.7)]
        boxes = _apply_regression(boxes, boxes[:, 5:9])
        return _square(boxes)

    def _pnet_level(self, image: FloatArray, scale: float) -> FloatArray:
        """P-Net's windows on one pyramid level, after that level's own NMS."""
        height, width = image.shape[:2]
        h, w = math.ceil(height * scale), math.ceil(width * scale)
        scaled = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        batch = scaled.transpose(2, 0, 1)[np.newaxis]
        regression, probability = self._pnet.run(None, {"image": batch})
        boxes = _pnet_boxes(probability[0, 1], regression[0], scale, self.config.thresholds[0])
        return boxes[_nms(boxes, 0.5)] if len(boxes) else boxes

    # Stage 2: R-Net on 24x24 crops.
    def _refine(self, image: FloatArray, boxes: FloatArray) -> FloatArray:
        crops = _crops(image, boxes, 24)
        regression, probability = _run_batched(self._rnet, crops)
        keep = probability[:, 1] > self.config.thresholds[1]
        boxes = boxes[keep].copy()
        boxes[:, 4] = probability[keep, 1]
        boxes[:, 5:9] = regression[keep]
        boxes = boxes[_nms(boxes, 0.7)]
        return _square(_apply_regression(boxes, boxes[:, 5:9]))

    # Stage 3: O-Net on 48x48 crops, with the 5 points.
    def _output(self, image: FloatArray, boxes: FloatArray) -> tuple[FloatArray, FloatArray]:
        crops = _crops(image, boxes, 48)
        regression, points, probability = _run_batched(self._onet, crops)
        keep = probability[:, 1] > self.config.thresholds[2]
        boxes, points, regression = boxes[keep].copy(), points[keep], regression[keep]
        boxes[:, 4] = probability[keep, 1]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        xs = w[:, None] * points[:, 0:5] + boxes[:, 0:1] - 1
        ys = h[:, None] * points[:, 5:10] + boxes[:, 1:2] - 1
        boxes = _apply_regression(boxes, regression)
        keep_idx = _nms(boxes, 0.7, by_min=True)
        pts = np.stack([xs, ys], axis=-1)[keep_idx]
        return boxes[keep_idx], pts.astype(np.float32)


def _run_batched(session: ort.InferenceSession, crops: FloatArray) -> list[FloatArray]:
    """The network's outputs for all crops, run CASCADE_BATCH crops at a time."""
    parts = [
        session.run(None, {"image": crops[start : start + CASCADE_BATCH]})
        for start in range(0, len(crops), CASCADE_BATCH)
    ]
    return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]


def _pyramid_scales(height: int, width: int, min_size: int) -> list[float]:
    scale = PNET_CELL / min_size
    side = min(height, width) * scale
    scales = []
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= PYRAMID_FACTOR
        side *= PYRAMID_FACTOR
    return scales


def _pnet_boxes(
    probability: FloatArray, regression: FloatArray, scale: float, threshold: float
) -> FloatArray:
    """Rows of [x1, y1, x2, y2, score, dx1, dy1, dx2, dy2] in original image pixels."""
    ys, xs = np.nonzero(probability > threshold)
    if not len(ys):
        return np.zeros((0, 9), np.float32)
    x1 = np.floor((PNET_STRIDE * xs + 1) / scale)
    y1 = np.floor((PNET_STRIDE * ys + 1) / scale)
    x2 = np.floor((PNET_STRIDE * xs + PNET_CELL) / scale)
    y2 = np.floor((PNET_STRIDE * ys + PNET_CELL) / scale)
    reg = regression[:, ys, xs].T
    return np.column_stack([x1, y1, x2, y2, probability[ys, xs], reg]).astype(np.float32)


def _nms(boxes: FloatArray, threshold: float, by_min: bool = False) -> NDArray[np.intp]:
    """Indices kept by greedy non-maximum suppression, best score first.

    Union-IoU suppression (the hot path: hundreds of P-Net proposals) runs in OpenCV; the
    intersection-over-smaller-box variant MTCNN uses last is done here on a handful of boxes.
    """
    if not len(boxes):
        return np.zeros((0,), np.intp)
    if not by_min:
        xywh = np.column_stack(
            [boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1]
        )
        # The stubs ask for sequences; OpenCV takes arrays directly, without a copy.
        kept = cv2.dnn.NMSBoxes(xywh, boxes[:, 4], 0.0, threshold)  # type: ignore[arg-type]
        return np.asarray(kept, dtype=np.intp).reshape(-1)
    x1, y1, x2, y2, score = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-score, kind="stable")
    keep: list[int] = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(int(best))
        iw = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        inter = iw * ih
        order = rest[inter / np.minimum(area[best], area[rest]) <= threshold]
    return np.asarray(keep, dtype=np.intp)


def _apply_regression(boxes: FloatArray, regression: FloatArray) -> FloatArray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + regression[:, 0] * w
    out[:, 1] = boxes[:, 1] + regression[:, 1] * h
    out[:, 2] = boxes[:, 2] + regression[:, 2] * w
    out[:, 3] = boxes[:, 3] + regression[:, 3] * h
    return out


def _square(boxes: FloatArray) -> FloatArray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    out[:, 0:4] = np.floor(out[:, 0:4])
    return out


def _crops(image: FloatArray, boxes: FloatArray, size: int) -> FloatArray:
    """Each box cut from the image (zero outside it) and resized to size x size, as NCHW."""
    height, width = image.shape[:2]
    batch = np.zeros((len(boxes), size, size, 3), np.float32)
    for i, (x1f, y1f, x2f, y2f) in enumerate(boxes[:, 0:4]):
        x1, y1, x2, y2 = int(x1f), int(y1f), int(x2f), int(y2f)
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        sx1, sy1 = max(x1, 0), max(y1, 0)
        sx2, sy2 = min(x2, width - 1), min(y2, height - 1)
        if bw <= 1 or bh <= 1 or sx2 < sx1 or sy2 < sy1:
            continue
        patch = image[sy1 : sy2 + 1, sx1 : sx2 + 1]
        if (sx1, sy1, sx2, sy2) != (x1, y1, x2, y2):  # reaches past the border: pad with zeros
            padded = np.zeros((bh, bw, 3), np.float32)
            padded[sy1 - y1 : sy2 - y1 + 1, sx1 - x1 : sx2 - x1 + 1] = patch
            patch = padded
        cv2.resize(patch, (size, size), dst=batch[i], interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def _to_face(box: FloatArray, points: FloatArray, width: int, height: int) -> DetectedFace:
    x1 = float(np.clip(box[0], 0, width))
    y1 = float(np.clip(box[1], 0, height))
    x2 = float(np.clip(box[2], 0, width))
    y2 = float(np.clip(box[3], 0, height))
    return DetectedFace(box=(x1, y1, x2, y2), confidence=float(box[4]), points=points)
