"""Fitting the linear head: cross-validated C, Platt calibration, final fit (training only).

Cross-validation mirrors the official NUAA protocol, whose test split is a recording session
never seen in training: each fold holds out the NUAA images of one session (half of its subjects
at a time) and trains without *any* image of that session, so a fold's figures include the
session shift; CelebA-Spoof's subject groups are split across the same folds. Samples without a
session (generated test data) are split by subject group only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facegate.engine.spoof.features import FeatureConfig
from facegate.engine.spoof.model import SpoofModel, histogram_map
from facegate.spoof.data import Sample
from facegate.spoof.metrics import PadFigures, pad_figures

N_FOLDS = 4
C_GRID = (0.01, 0.03, 0.1)  # inverse L2 strength of the logistic head, chosen per training run


@dataclass(frozen=True)
class Fold:
    train: NDArray[np.intp]
    test: NDArray[np.intp]


@dataclass(frozen=True)
class HeadFit:
    model: SpoofModel
    c: float
    cv: PadFigures  # out-of-fold, calibrated probabilities at 0.5
    cv_by_c: dict[float, PadFigures]  # out-of-fold, uncalibrated, per C tried


def session_aware_folds(samples: Sequence[Sample], n_folds: int = N_FOLDS) -> list[Fold]:
    sessions = sorted({s.session for s in samples if s.session})
    per_session = max(1, n_folds // max(1, len(sessions)))
    subjects = {g: i for i, g in enumerate(sorted({s.subject for s in samples}))}
    fold = np.array(
        [
            (sessions.index(s.session) * per_session + subjects[s.subject] % per_session) % n_folds
            if s.session
            else subjects[s.subject] % n_folds
            for s in samples
        ]
    )
    session = np.array([s.session for s in samples])
    folds = []
    for k in range(n_folds):
        test = fold == k
        held_sessions = sorted({str(v) for v in session[test] if v})
        train = ~test & ~np.isin(session, held_sessions)
        if test.any() and train.any():
            folds.append(Fold(np.flatnonzero(train), np.flatnonzero(test)))
    return folds


def _pipeline(c: float) -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def _out_of_fold(
    x: NDArray[np.float32], fake: NDArray[np.bool_], folds: list[Fold], c: float
) -> NDArray[np.float64]:
    decision = np.full(len(fake), np.nan)
    for fold in folds:
        if len(np.unique(fake[fold.train])) < 2:
            continue  # a fold whose training side has one class cannot fit a classifier
        model = _pipeline(c).fit(x[fold.train], fake[fold.train])  # type: ignore[attr-defined]
        decision[fold.test] = model.decision_function(x[fold.test])
    return decision


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def fit_head(
    features: NDArray[np.float32],
    fake: NDArray[np.bool_],
    folds: list[Fold],
    config: FeatureConfig,
    *,
    hellinger: bool = False,
    c_grid: Sequence[float] = C_GRID,
    backbone: dict[str, NDArray[np.float16]] | None = None,
    meta: dict[str, str] | None = None,
) -> HeadFit:
    from sklearn.linear_model import LogisticRegression

    fake = np.asarray(fake, bool)
    if len(np.unique(fake)) < 2:
        raise ValueError("training needs both live and fake faces")
    if not folds:
        raise ValueError("cross-validation needs at least two subject groups")
    x = histogram_map(features, config) if hellinger else np.asarray(features, np.float32)
    decisions = {c: _out_of_fold(x, fake, folds, c) for c in c_grid}
    cv_by_c = {}
    for c, z in decisions.items():
        seen = ~np.isnan(z)
        if len(np.unique(fake[seen])) < 2:
            raise ValueError("the cross-validation folds hold out too few faces of each class")
        cv_by_c[c] = pad_figures(_sigmoid(z[seen]), fake[seen])
    # Lowest out-of-fold ACER; among equals the higher AUC, then the stronger regularisation.
    best = min(c_grid, key=lambda c: (round(cv_by_c[c].acer, 6), -cv_by_c[c].auc, c))
    oof = decisions[best]
    seen = ~np.isnan(oof)
    # Platt scaling on out-of-fold decisions: the final model's 0.5 then sits where it would on
    # faces (and sessions) it has not seen, not where the training fit's optimism puts it.
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(oof[seen, None], fake[seen])
    slope, offset = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    if slope <= 0 or cv_by_c[best].auc <= 0.5:
        # Out of fold, fakes did not score above live faces: the head learnt nothing that
        # carries over to unseen people or sessions, and a calibrated copy would be inverted.
        raise ValueError(
            f"the features do not separate fakes from live faces out of fold "
            f"(AUC {cv_by_c[best].auc:.3f}); refusing to build a model"
        )
    calibrated = _sigmoid(slope * oof[seen] + offset)

    final = _pipeline(best).fit(x, fake)  # type: ignore[attr-defined]
    scaler, logistic = final.steps[0][1], final.steps[1][1]
    model = SpoofModel(
        config=config,
        hellinger=hellinger,
        mean=scaler.mean_.astype(np.float32),
        scale=scaler.scale_.astype(np.float32),
        weights=logistic.coef_[0].astype(np.float32),
        bias=float(logistic.intercept_[0]),
        platt_slope=slope,
        platt_offset=offset,
        backbone=backbone or {},
        meta=meta or {},
    )
    return HeadFit(model, best, pad_figures(calibrated, fake[seen]), cv_by_c)
