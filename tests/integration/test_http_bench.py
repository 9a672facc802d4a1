"""``facegate bench --http`` end to end on a tiny LFW-shaped folder: a real server, real HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facegate.eval.http_bench import PERSON, run_http_bench
from tests.factories import augmented, encode, grace_hopper_rgb

pytestmark = pytest.mark.integration


def test_http_bench_serves_matches_and_reports_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "lfw" / "lfw-deepfunneled" / PERSON
    folder.mkdir(parents=True)
    for variant in range(3):
        (folder / f"{PERSON}_{variant + 1:04d}.jpg").write_bytes(
            encode(augmented(grace_hopper_rgb(), variant))
        )

    assert run_http_bench(tmp_path, requests_per_client=2, modes=("none",), clients=(1, 2)) == 0

    report = capsys.readouterr().out
    rates = re.findall(r"tta=none\s+(\d) client\(s\):\s+([\d.]+) matches/s", report)
    assert [clients for clients, _ in rates] == ["1", "2"]
    assert all(float(rate) > 0 for _, rate in rates)
    assert "face_recognition 1.3.0, in process" in report
