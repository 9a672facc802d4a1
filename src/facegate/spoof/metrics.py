"""Presentation-attack detection figures in ISO/IEC 30107-3 terms.

- APCER: share of attacks (fakes) accepted as live;
- BPCER: share of live faces rejected as attacks;
- ACER: their mean; AUC: probability that a random fake scores above a random live face.

With a single attack type here (NUAA is print only; CelebA-Spoof's types are not labelled per
image), APCER is over all attacks rather than the worst of several types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PadFigures:
    apcer: float
    bpcer: float
    acer: float
    auc: float
    attacks: int
    bona_fide: int

    def line(self) -> str:
        return (
            f"APCER {100 * self.apcer:5.2f} %  BPCER {100 * self.bpcer:5.2f} %  "
            f"ACER {100 * self.acer:5.2f} %  AUC {self.auc:.4f}  "
            f"({self.attacks} attacks, {self.bona_fide} live)"
        )


def auc(scores: NDArray[np.float64], fake: NDArray[np.bool_]) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) statistic, ties counted half."""
    positives, negatives = scores[fake], scores[~fake]
    if not len(positives) or not len(negatives):
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # Average ranks over runs of equal scores.
    starts = np.r_[0, np.nonzero(np.diff(sorted_scores))[0] + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    rank_sum = ranks[fake].sum()
    n_pos, n_neg = len(positives), len(negatives)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pad_figures(
    probability_fake: NDArray[np.float64], fake: NDArray[np.bool_], threshold: float = 0.5
) -> PadFigures:
    scores = np.asarray(probability_fake, np.float64)
    fake = np.asarray(fake, bool)
    if scores.shape != fake.shape:
        raise ValueError("one score per label is needed")
    said_fake = scores >= threshold
    attacks, bona_fide = int(fake.sum()), int((~fake).sum())
    apcer = float((~said_fake & fake).sum() / attacks) if attacks else float("nan")
    bpcer = float((said_fake & ~fake).sum() / bona_fide) if bona_fide else float("nan")
    return PadFigures(apcer, bpcer, (apcer + bpcer) / 2, auc(scores, fake), attacks, bona_fide)
