"""Verification metrics over scored pairs: k-fold accuracy, fixed-threshold accuracy, TAR@FAR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Scores = NDArray[np.float64]
Labels = NDArray[np.bool_]


def accuracy_at(scores: Scores, same: Labels, threshold: float) -> float:
    return float(np.mean((scores >= threshold) == same))


def best_threshold(scores: Scores, same: Labels) -> float:
    """The threshold with the highest accuracy; ties go to the middle of the best run."""
    if len(scores) == 0:
        raise ValueError("no scored pairs to choose a threshold on")
    candidates = np.unique(scores)
    mids = np.concatenate(
        [[candidates[0] - 1e-9], (candidates[1:] + candidates[:-1]) / 2, [candidates[-1] + 1e-9]]
    )
    accuracies = np.array([accuracy_at(scores, same, t) for t in mids])
    best = np.flatnonzero(accuracies == accuracies.max())
    return float(mids[best[len(best) // 2]])


@dataclass(frozen=True)
class KFoldResult:
    mean: float
    std: float
    per_fold: list[float]
    thresholds: list[float]
    # False with a single fold: there is no other fold to choose its threshold on, so it is
    # chosen on the fold itself, which flatters the figure (best-threshold accuracy).
    held_out: bool = True


def kfold_accuracy(scores: Scores, same: Labels, folds: NDArray[np.int_]) -> KFoldResult:
    """LFW protocol: the threshold is chosen on the other folds and tested on the held-out one
    (with one fold only, on that fold: see ``KFoldResult.held_out``)."""
    fold_ids = np.unique(folds)
    if len(fold_ids) == 0:
        raise ValueError("no scored pairs")
    per_fold, thresholds = [], []
    for fold in fold_ids:
        test = folds == fold
        train = folds != fold if len(fold_ids) > 1 else test
        threshold = best_threshold(scores[train], same[train])
        thresholds.append(threshold)
        per_fold.append(accuracy_at(scores[test], same[test], threshold))
    return KFoldResult(
        float(np.mean(per_fold)),
        float(np.std(per_fold)),
        per_fold,
        thresholds,
        held_out=len(fold_ids) > 1,
    )


def tar_at_far(scores: Scores, same: Labels, far: float) -> tuple[float, float]:
    """True accept rate at the threshold whose false accept rate is at most ``far`` (NaN when
    no pair is of the same person: a subset of LFW can hold none)."""
    impostor = np.sort(scores[~same])[::-1]
    allowed = int(np.floor(far * len(impostor)))
    threshold = impostor[allowed] + 1e-12 if allowed < len(impostor) else -np.inf
    genuine = scores[same]
    rate = float(np.mean(genuine >= threshold)) if len(genuine) else float("nan")
    return rate, float(threshold)
