"""From descriptor distance to one calibrated similarity in [0, 1].

score = 1 / (1 + exp(slope * (distance - midpoint)))

A logistic curve over the Euclidean distance between two descriptors of one recipe (for unit
descriptors such as SFace's, a function of the cosine): it is monotone, so every threshold on the
score is a threshold on the distance. The two parameters are fitted per recipe and test-time
augmentation mode by ``facegate eval calibrate`` on LFW's development *training* pairs
(pairsDevTrain.txt, disjoint from the 10-fold test pairs), and shipped in
``facegate/models/score_calibration.json`` as ``{recipe key: {tta mode: curve}}``. The fit puts
the equal-error point near score 0.45 and makes the curve steep there, so the seed's two
operating points (0.4 for identify-style use, 0.5 for /match) both sit near the best threshold.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.errors import ModelMissing

CALIBRATION_FILE = "score_calibration.json"


@dataclass(frozen=True)
class ScoreCalibration:
    midpoint: float
    slope: float
    source: str = "default"

    def score(self, distance: NDArray[np.floating] | float) -> NDArray[np.float64]:
        d = np.asarray(distance, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(np.clip(self.slope * (d - self.midpoint), -60, 60)))

    def distance_at(self, score: float) -> float:
        """The distance at which the score equals ``score`` (the inverse curve)."""
        score = min(max(score, 1e-9), 1 - 1e-9)
        return self.midpoint + float(np.log(1.0 / score - 1.0)) / self.slope

    def save(self, path: Path, recipe: str, tta: str) -> None:
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing.setdefault(recipe, {})[tta] = asdict(self)
        path.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def load_calibration(recipe: str, tta: str) -> ScoreCalibration:
    """The shipped curve of one recipe (``Recipe.key``) in one test-time augmentation mode."""
    text = (resources.files("facegate.models") / CALIBRATION_FILE).read_text()
    entry = json.loads(text).get(recipe, {}).get(tta)
    if entry is None:
        raise ModelMissing(
            f"no score calibration ships for recipe {recipe} with tta={tta}; fit one with "
            "'facegate eval calibrate DATA' or choose another FACEGATE_TTA"
        )
    return ScoreCalibration(**entry)


def distances(query: NDArray[np.float32], gallery: NDArray[np.float32]) -> NDArray[np.float32]:
    """Euclidean distance from one descriptor to each row of a gallery."""
    if gallery.size == 0:
        return np.zeros((0,), np.float32)
    diff = gallery.astype(np.float32) - query.astype(np.float32)[np.newaxis, :]
    squared: NDArray[np.float32] = np.einsum("ij,ij->i", diff, diff)
    return np.sqrt(squared).astype(np.float32)
