from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facegate.engine.score import ScoreCalibration, distances, load_calibration
from facegate.engine.zoo import REGISTRY
from facegate.errors import ModelMissing
from facegate.eval.lfw import RECOGNIZER_MODES, fit_calibration
from facegate.eval.verification import accuracy_at, best_threshold, kfold_accuracy, tar_at_far


def test_score_is_monotone_and_bounded() -> None:
    calibration = ScoreCalibration(midpoint=0.6, slope=20.0)
    scores = calibration.score(np.linspace(0, 2, 50))
    assert np.all(np.diff(scores) < 0)
    assert scores.min() >= 0 and scores.max() <= 1
    assert float(calibration.score(0.6)) == pytest.approx(0.5)


def test_distance_at_inverts_score() -> None:
    calibration = ScoreCalibration(midpoint=0.55, slope=17.0)
    for score in (0.1, 0.4, 0.5, 0.9):
        assert float(calibration.score(calibration.distance_at(score))) == pytest.approx(score)


def test_every_recognizer_ships_a_curve_for_each_of_its_modes() -> None:
    for name, modes in RECOGNIZER_MODES.items():
        recipe = REGISTRY[name].recipe
        assert recipe is not None
        for mode in modes:
            calibration = load_calibration(recipe.key, mode)
            # Unit descriptors lie at most 2 apart; dlib's are near 0.6 at the same-person edge.
            assert 0.3 < calibration.midpoint < 2.0
            assert calibration.slope > 0
            assert "pairsDevTrain" in calibration.source


def test_a_missing_curve_is_a_clear_error() -> None:
    with pytest.raises(ModelMissing, match="facegate eval calibrate"):
        load_calibration("sface@2021dec/arcface112", "multi")


def test_save_keeps_other_entries(tmp_path: Path) -> None:
    target = tmp_path / "cal.json"
    ScoreCalibration(0.5, 10.0, "a").save(target, "r1", "flip")
    ScoreCalibration(0.6, 12.0, "b").save(target, "r1", "none")
    ScoreCalibration(0.7, 14.0, "c").save(target, "r2", "none")
    stored = json.loads(target.read_text())
    assert set(stored) == {"r1", "r2"}
    assert set(stored["r1"]) == {"flip", "none"}


def test_distances_match_numpy() -> None:
    rng = np.random.default_rng(0)
    query, gallery = rng.normal(size=128).astype(np.float32), rng.normal(size=(5, 128))
    expected = np.linalg.norm(gallery - query, axis=1)
    assert np.allclose(distances(query, gallery.astype(np.float32)), expected, atol=1e-5)
    assert distances(query, np.zeros((0, 128), np.float32)).shape == (0,)


def test_fit_calibration_puts_best_threshold_at_045() -> None:
    rng = np.random.default_rng(1)
    same_d = rng.normal(0.35, 0.08, 500)
    diff_d = rng.normal(0.85, 0.08, 500)
    dist = np.concatenate([same_d, diff_d])
    same = np.concatenate([np.ones(500, bool), np.zeros(500, bool)])
    calibration = fit_calibration(dist, same, "test")
    best = -best_threshold(-dist, same)
    assert float(calibration.score(best)) == pytest.approx(0.45, abs=1e-6)
    assert accuracy_at(calibration.score(dist), same, 0.4) > 0.99
    assert accuracy_at(calibration.score(dist), same, 0.5) > 0.99


def test_kfold_chooses_threshold_on_other_folds() -> None:
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.7, 0.6, 0.3, 0.4])
    same = np.array([True, True, False, False, True, True, False, False])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    result = kfold_accuracy(scores, same, folds)
    assert result.mean == 1.0
    assert len(result.thresholds) == 2


def test_tar_at_far() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    same = np.array([True, True, True, False, False, False])
    tar, threshold = tar_at_far(scores, same, 0.0)
    assert tar == 1.0 and threshold > 0.3
