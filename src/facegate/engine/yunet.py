"""YuNet face detection (Wu et al., 2023; OpenCV Zoo's 2023mar model) on ONNX Runtime.

One anchor-free network over the whole image: for each cell of three grids (strides 8, 16 and
32) it gives a class and an objectness score, a box (centre offset and log size, in cells) and
5 landmarks. The decoding and the non-maximum suppression follow OpenCV's ``FaceDetectorYN``.

The network runs on the image padded to a multiple of 32 on each side (the converted graph takes
any size); photos whose longer side exceeds ``max_side`` are first shrunk to it, and the boxes
and points are mapped back, so the work and the memory of one detection stay bounded whatever
the upload's size (faces smaller than about 10 px at that scale are then out of reach).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from facegate.engine.types import DetectedFace, by_prominence

STRIDES = (8, 16, 32)
PAD_MULTIPLE = 32
NMS_THRESHOLD = 0.3
TOP_K = 5000


@dataclass(frozen=True)
class YuNetConfig:
    # Faces scoring below are dropped. OpenCV's sample uses 0.9; facegate's default is chosen
    # on detection/index.csv and LFW (BENCHMARKS.md).
    score_threshold: float = 0.8
    min_face_size: int = 0  # boxes whose shorter side is smaller are dropped
    max_side: int = 1920  # longer side the network sees at most


class YuNetDetector:
    """Thread-safe: an ONNX Runtime session allows concurrent runs."""

    def __init__(self, session: ort.InferenceSession, config: YuNetConfig) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in session.get_outputs()]
        self.config = config
        # ONNX Runtime's arena keeps the largest intermediate tensors it ever needed (a 1920 px
        # photo's feature maps are hundreds of MB); shrinking it after each run hands them back.
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def detect(
        self,
        rgb: NDArray[np.uint8],
        min_face_size: int | None = None,
        *,
        largest_only: bool = False,
    ) -> list[DetectedFace]:
        """All faces in an RGB image, largest first (``by_prominence``); with ``largest_only``,
        just the first (one network pass finds every size, so it costs the same)."""
        height, width = rgb.shape[:2]
        if min(height, width) < 2:
            return []
        scale = min(1.0, self.config.max_side / max(height, width))
        image = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
        boxes, scores, points = self._run(image)
        if scale < 1.0:
            boxes /= scale
            points /= scale
        smallest = self.config.min_face_size if min_face_size is None else min_face_size
        faces = [
            _to_face(box, score, pts, width, height)
            for box, score, pts in zip(boxes, scores, points, strict=True)
        ]
        faces = [f for f in faces if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= smallest]
        faces = by_prominence(faces, width, height)
        return faces[:1] if largest_only else faces

    def _run(
        self, rgb: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        """Boxes (x1, y1, x2, y2), scores and 5x2 points in the pixels of ``rgb``."""
        height, width = rgb.shape[:2]
        padded_h = -(-height // PAD_MULTIPLE) * PAD_MULTIPLE
        padded_w = -(-width // PAD_MULTIPLE) * PAD_MULTIPLE
        # The network was trained on BGR pixels in 0..255, as OpenCV reads them.
        batch = np.zeros((1, 3, padded_h, padded_w), np.float32)
        batch[0, :, :height, :width] = rgb[:, :, ::-1].transpose(2, 0, 1)
        named = dict(
            zip(
                self._outputs,
                self._session.run(None, {self._input: batch}, self._run_options),
                strict=True,
            )
        )
        boxes, scores, points = [], [], []
        for stride in STRIDES:
            cols = padded_w // stride
            cls = np.clip(named[f"cls_{stride}"][0, :, 0], 0, 1)
            obj = np.clip(named[f"obj_{stride}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = np.nonzero(score >= self.config.score_threshold)[0]
            if not len(keep):
                continue
            col = (keep % cols).astype(np.float32)
            row = (keep // cols).astype(np.float32)
            box = named[f"bbox_{stride}"][0, keep]
            cx, cy = (col + box[:, 0]) * stride, (row + box[:, 1]) * stride
            w, h = np.exp(box[:, 2]) * stride, np.exp(box[:, 3]) * stride
            boxes.append(np.column_stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
            kps = named[f"kps_{stride}"][0, keep].reshape(-1, 5, 2)
            grid = np.stack([col, row], axis=-1)[:, np.newaxis, :]
            points.append((kps + grid) * stride)
            scores.append(score[keep])
        if not boxes:
            empty = np.zeros((0, 4), np.float32)
            return empty, np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        all_boxes = np.concatenate(boxes).astype(np.float32)
        all_scores = np.concatenate(scores).astype(np.float32)
        all_points = np.concatenate(points).astype(np.float32)
        xywh = np.column_stack([all_boxes[:, :2], all_boxes[:, 2:] - all_boxes[:, :2]])
        kept = cv2.dnn.NMSBoxes(
            xywh,  # type: ignore[arg-type]
            all_scores,  # type: ignore[arg-type]
            self.config.score_threshold,
            NMS_THRESHOLD,
            top_k=TOP_K,
        )
        index = np.asarray(kept, dtype=np.intp).reshape(-1)
        return all_boxes[index], all_scores[index], all_points[index]


def _to_face(
    box: NDArray[np.float32],
    score: np.float32,
    points: NDArray[np.float32],
    width: int,
    height: int,
) -> DetectedFace:
    # YuNet's landmark order (the subject's right eye first, which is the image's left one;
    # then left eye, nose, right and left mouth corners) is the seed's order already.
    x1, x2 = (float(np.clip(v, 0, width)) for v in (box[0], box[2]))
    y1, y2 = (float(np.clip(v, 0, height)) for v in (box[1], box[3]))
    return DetectedFace(
        box=(x1, y1, x2, y2), confidence=float(score), points=points.astype(np.float32)
    )
