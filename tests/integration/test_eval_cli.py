"""``facegate eval lfw`` end to end on a tiny LFW-shaped folder made of package-shipped photos:
``--folds 1 --limit 2`` (which used to crash in best_threshold), its JSON beside the text and its
ROC and DET plots. No file of ../shared/facedata is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facegate.cli import main
from tests.factories import astronaut_rgb, augmented, encode, grace_hopper_rgb

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_lfw(tmp_path: Path) -> Path:
    root = tmp_path / "facedata"
    people = {
        "Grace_Hopper": [augmented(grace_hopper_rgb(), i) for i in (0, 1)],
        "Eileen_Collins": [augmented(astronaut_rgb(), 0)],
    }
    for name, images in people.items():
        folder = root / "lfw" / "lfw-deepfunneled" / name
        folder.mkdir(parents=True)
        for number, rgb in enumerate(images, 1):
            (folder / f"{name}_{number:04d}.jpg").write_bytes(encode(rgb))
    # The official layout: "folds<TAB>pairs per half", matched pairs, then mismatched ones.
    (root / "lfw" / "pairs.txt").write_text(
        "10\t1\nGrace_Hopper\t1\t2\nGrace_Hopper\t1\tEileen_Collins\t1\n"
    )
    return root


def test_eval_lfw_one_fold_writes_json_and_plots(
    tiny_lfw: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "facegate-data"
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(data_dir))  # caches go there, not ./data
    argv = ["eval", "lfw", str(tiny_lfw), "--folds", "1", "--limit", "2"]
    argv += ["--detector", "yunet", "--recognizer", "sface", "--tta", "none"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"data folder {data_dir} (from FACEGATE_DATA_DIR or .env)" in captured.err
    assert "1-fold" in captured.out and "(one fold: its threshold chosen on itself)" in captured.out
    target = data_dir / "eval" / "lfw.json"  # the default place
    assert f"figures written to {target}" in captured.out
    report = json.loads(target.read_text())
    assert report["argv"] == argv
    sections = {f["section"]: f for f in report["figures"]}
    product = sections["product path"]
    assert product["pairs"] == 2 and product["threshold_held_out"] is False
    engine = sections["engine yunet+sface tta=none as users run it"]
    assert engine["kfold_accuracy"] == 1.0 and engine["folds"] == 1
    labels = [c["label"] for c in report["curves"]]
    assert labels == ["product path (defaults)", "engine yunet+sface tta=none"]
    assert all(c["genuine"] == 1 and c["impostor"] == 1 for c in report["curves"])
    assert any("LFW: 2 pairs" in line for line in report["text"])
    for plot in report["plots"]:
        assert Path(plot).read_bytes().startswith(b"\x89PNG")
    assert sorted(Path(p).name for p in report["plots"]) == ["lfw-det.png", "lfw-roc.png"]

    # --json PATH puts the figures (and the plots beside them) where asked.
    elsewhere = tmp_path / "figures" / "run.json"
    assert main([*argv, "--engine-only", "--json", str(elsewhere)]) == 0
    assert json.loads(elsewhere.read_text())["curves"][0]["label"] == "engine yunet+sface tta=none"
    assert (elsewhere.parent / "run-det.png").is_file()
