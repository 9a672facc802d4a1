from __future__ import annotations

from pathlib import Path

import numpy as np

from facegate.engine.types import DetectedFace
from facegate.eval.lfw_data import labelled_face, read_pairs


def test_reads_official_pairs_with_header(tmp_path: Path) -> None:
    text = "2\t1\nAnn\t1\t2\nBob\t1\tCid\t3\nDee\t2\t4\nEve\t1\tFay\t1\n"
    (tmp_path / "pairs.txt").write_text(text)
    pairs = read_pairs(tmp_path / "pairs.txt")
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert pairs[0].same and not pairs[1].same
    assert pairs[0].first == "lfw-deepfunneled/Ann/Ann_0001.jpg"
    assert pairs[1].second == "lfw-deepfunneled/Cid/Cid_0003.jpg"


def test_reads_headerless_dev_list(tmp_path: Path) -> None:
    (tmp_path / "dev.txt").write_text("Ann\t1\t2\nBob\t1\tCid\t3\n")
    pairs = read_pairs(tmp_path / "dev.txt")
    assert len(pairs) == 2 and {p.fold for p in pairs} == {0}


def _face(box: tuple[float, float, float, float]) -> DetectedFace:
    return DetectedFace(box, 0.99, np.zeros((5, 2), np.float32))


def test_labelled_face_is_the_one_covering_the_centre() -> None:
    big_off_centre = _face((0, 0, 120, 120))
    small_central = _face((100, 100, 150, 150))
    assert labelled_face([big_off_centre, small_central], 250, 250) is small_central
    assert labelled_face([], 250, 250) is None
