"""``facegate bench --detector`` end to end, on a tiny LFW-shaped folder of package images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facegate.eval.detector_bench import run_detector_bench
from tests.factories import astronaut_rgb, encode, grace_hopper_rgb

pytestmark = pytest.mark.integration


def test_detector_bench_reports_identical_outputs_and_agreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for person, rgb in (("Grace_Hopper", grace_hopper_rgb()), ("Eileen_Collins", astronaut_rgb())):
        folder = tmp_path / "lfw" / "lfw-deepfunneled" / person
        folder.mkdir(parents=True)
        (folder / f"{person}_0001.jpg").write_bytes(encode(rgb))

    assert run_detector_bench(tmp_path, repeats=1, images=2) == 0

    report = capsys.readouterr().out
    prelu_lines = [line for line in report.splitlines() if "max |difference|" in line]
    assert len(prelu_lines) == 4
    assert all(line.endswith("max |difference| 0.0e+00") for line in prelu_lines)
    # On these larger images the finest pyramid levels can nudge the box by a pixel or so.
    agreement = re.search(r"same box: (\d)/2 \(largest difference ([\d.]+) px\)", report)
    assert agreement is not None
    assert float(agreement.group(2)) < 3.0
    thread_lines = [line for line in report.splitlines() if "largest face + chip + ResNet" in line]
    assert len(thread_lines) == 3
