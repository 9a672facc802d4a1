"""Run-time spoof detection: one RGB image and one detected face → probability of "fake".

The model is facegate's own (``facegate/models/spoof_model.npz``, trained by
``facegate spoof train``; see ``spoof_model_card.md`` beside it): four face-centred crops go
through the first layers of an ImageNet MobileNetV2 (their weights are inside the model file)
on ONNX Runtime, and a calibrated linear head turns the layer averages into a probability.
Run time needs numpy, OpenCV, onnx and onnxruntime only: no PyTorch, no download.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.models import intra_op_threads
from facegate.engine.spoof.model import SpoofModel
from facegate.engine.types import DetectedFace
from facegate.errors import BadRequest, ModelMissing

MODEL_FILE = "spoof_model.npz"


class SpoofDetector:
    """Thread-safe: read-only arrays and an ONNX Runtime session, which allows concurrent runs."""

    def __init__(self, model: SpoofModel, threads: int = 1) -> None:
        self.model = model
        self._extract = model.extractor(threads)

    def features(self, rgb: NDArray[np.uint8], face: DetectedFace) -> NDArray[np.float32]:
        _check_image(rgb)
        _check_box(face.box, rgb.shape[1], rgb.shape[0])
        return self._extract(rgb, face)

    def probability_fake(self, rgb: NDArray[np.uint8], face: DetectedFace) -> float:
        """Calibrated probability that the face is a presentation attack: 0.5 is the decision
        point the model was calibrated for (``Settings.spoof_threshold`` may move it)."""
        return float(self.model.probability(self.features(rgb, face)[np.newaxis])[0])


def _check_image(rgb: object) -> None:
    if not isinstance(rgb, np.ndarray):
        raise BadRequest(f"the image must be a numpy array, not {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadRequest(f"the image must be H x W x 3 (RGB); its shape is {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise BadRequest(f"the image must hold uint8 pixels; it holds {rgb.dtype}")
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise BadRequest(f"the image is too small ({rgb.shape[1]}x{rgb.shape[0]} pixels)")


def _check_box(box: tuple[float, float, float, float], width: int, height: int) -> None:
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in box):
        raise BadRequest(f"the face box {box} is not finite")
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise BadRequest(f"the face box {box} is empty")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise BadRequest(f"the face box {box} lies outside the {width}x{height} image")


def model_path() -> Path:
    return Path(str(resources.files("facegate.models") / MODEL_FILE))


def load_spoof_detector(
    settings: Settings, path: Path | None = None, threads: int | None = None
) -> SpoofDetector:
    """The shipped spoof model (or the one at ``path``); ModelMissing (503) when it is absent."""
    path = path or model_path()
    if not path.is_file():
        raise ModelMissing(
            f"the spoof model file {path.name} is missing from the installation; "
            "train one with 'facegate spoof train DATA_DIR --out "
            f"{path}'"
        )
    try:
        model = SpoofModel.load(path)
    except (OSError, KeyError, ValueError) as exc:
        raise ModelMissing(f"the spoof model file {path} is unreadable: {exc}") from exc
    return SpoofDetector(model, intra_op_threads(settings) if threads is None else threads)
