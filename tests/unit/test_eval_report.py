"""Evaluation figures: k-fold with one fold, and the JSON report with its ROC and DET plots."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from facegate.eval import verification as v
from facegate.eval.report import record, record_curve, reporting


def test_one_fold_chooses_its_threshold_on_itself_and_says_so() -> None:
    scores = np.array([0.9, 0.2])
    same = np.array([True, False])
    result = v.kfold_accuracy(scores, same, np.array([0, 0]))
    assert result.mean == 1.0 and not result.held_out and len(result.thresholds) == 1
    assert v.kfold_accuracy(scores, same, np.array([0, 1])).held_out


def test_empty_inputs_are_a_clear_error_not_an_index_error() -> None:
    empty = np.array([], dtype=np.float64)
    with pytest.raises(ValueError, match="no scored pairs"):
        v.best_threshold(empty, empty.astype(bool))
    with pytest.raises(ValueError, match="no scored pairs"):
        v.kfold_accuracy(empty, empty.astype(bool), np.array([], dtype=int))


def test_tar_without_matched_pairs_is_nan_without_a_warning() -> None:
    rate, _ = v.tar_at_far(np.array([0.1, 0.2]), np.array([False, False]), 0.001)
    assert np.isnan(rate)


def _scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    same = np.arange(400) < 200
    scores = np.where(same, rng.normal(0.8, 0.1, 400), rng.normal(0.3, 0.1, 400))
    return scores, same


def test_report_writes_figures_curves_text_and_both_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores, same = _scores()
    target = tmp_path / "out" / "lfw.json"
    with reporting("eval lfw", ["eval", "lfw", "DATA"], target):
        print("LFW: 400 pairs")
        record("engine", kfold_accuracy=0.99, tar=float("nan"))
        record_curve("engine", scores, same)
        record_curve("all matched", scores[:10], same[:10])  # no ROC: summarised, not drawn
    report = json.loads(target.read_text())
    assert report["command"] == "eval lfw" and report["argv"] == ["eval", "lfw", "DATA"]
    assert report["figures"] == [{"section": "engine", "kfold_accuracy": 0.99, "tar": None}]
    assert report["text"] == ["LFW: 400 pairs"]
    engine, matched = report["curves"]
    assert 0 <= engine["eer"] < 0.05 and engine["auc"] > 0.99
    assert engine["genuine"] == engine["impostor"] == 200
    assert engine["tar_at_far_0.01"] <= engine["tar_at_far_0.1"] <= 1
    assert "note" in matched and "eer" not in matched
    roc, det = (Path(p) for p in report["plots"])
    assert roc.name == "lfw-roc.png" and det.name == "lfw-det.png"
    assert roc.read_bytes().startswith(b"\x89PNG") and det.read_bytes().startswith(b"\x89PNG")
    out = capsys.readouterr().out
    assert "LFW: 400 pairs" in out and f"figures written to {target}" in out


def test_without_matplotlib_the_json_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    scores, same = _scores()
    with reporting("eval lfw", [], tmp_path / "r.json"):
        record_curve("engine", scores, same)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["plots"] == [] and "matplotlib is not installed" in report["plots_missing"]
    assert "no plots: matplotlib is not installed" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.png"))


def test_the_report_is_written_when_the_command_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), reporting("eval spoof", [], tmp_path / "r.json"):
        record("first", value=1)
        raise RuntimeError("half way")
    assert json.loads((tmp_path / "r.json").read_text())["figures"][0]["value"] == 1


def test_outside_a_report_recording_does_nothing() -> None:
    record("nothing", value=1)
    record_curve("nothing", np.array([0.5]), np.array([True]))
