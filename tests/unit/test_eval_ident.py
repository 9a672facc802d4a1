"""``facegate eval ident`` end to end on a tiny synthetic LFW layout, with the fake engine."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from facegate.config import Settings
from facegate.eval.ident import run_ident
from tests.unit.conftest import FakeEngine

# The fake engine tells people apart by red and green in steps of 64 (tests/unit/conftest.py).
LEVELS = (32, 96, 160, 224)
COLOURS = [(r, g) for r in LEVELS for g in LEVELS]


def _png(red: int, green: int, blue: int) -> bytes:
    tile = np.zeros((96, 96, 3), np.uint8)
    tile[:] = (red, green, blue)
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, format="PNG")
    return buffer.getvalue()


def _lfw(root: Path) -> Path:
    lfw = root / "lfw"
    counts = {}
    for index, (red, green) in enumerate(COLOURS[:12]):
        person = f"Person_{index:02d}"
        images = 3 if index < 6 else 1  # six enrollable people, six strangers
        counts[person] = images
        folder = lfw / "lfw-deepfunneled" / person
        folder.mkdir(parents=True)
        for number in range(1, images + 1):
            blue = 30 * (number - 1)  # the same person, a little different each time
            (folder / f"{person}_{number:04d}.jpg").write_bytes(_png(red, green, blue))
    rows = "".join(f"{p},{n}\n" for p, n in counts.items())
    (lfw / "people_counts.csv").write_text("name,num_images\n" + rows)
    (lfw / "pairsDevTrain.txt").write_text("Person_00\t1\t2\nPerson_00\t1\tPerson_07\t1\n")
    return root


def test_eval_ident_runs_through_the_service_and_writes_its_figures(tmp_path: Path) -> None:
    data = _lfw(tmp_path / "facedata")
    out = tmp_path / "out"
    engine = FakeEngine(Settings(data_dir=tmp_path / "data"))
    assert run_ident(data, out=out, engine=engine) == 0
    figures = json.loads((out / "ident.json").read_text())
    gallery = figures["galleries"]["6"]
    assert (gallery["people"], gallery["embeddings"]) == (6, 12)  # images 1 and 2 enrolled
    assert (gallery["mated_probes"], gallery["stranger_probes"]) == (6, 6)
    for label in ("default", "unknowns"):
        assert gallery[label]["tpir"] == 1.0 and gallery[label]["fpir"] == 0.0
        assert gallery[label]["strangers_named_as"] == []
    assert gallery["unknowns"]["threshold"] > gallery["default"]["threshold"]
    extrapolated = figures["extrapolated"]["1000000"]
    assert extrapolated["embeddings"] == 2_000_000
    assert extrapolated["default"]["threshold"] > gallery["default"]["threshold"]
    assert (out / "det.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
