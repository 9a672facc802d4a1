"""kill -9 during an enrollment burst and during training, then a restart: nothing acknowledged
is lost, nothing is half-written, no collection stays ``training`` (``facegate bench faults``,
one round here; the bench runs three)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.eval.fault_bench import run_fault_rounds

pytestmark = pytest.mark.integration


def test_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    lines: list[str] = []
    [result] = run_fault_rounds(1, tmp_path, report=lines.append)
    assert result.acknowledged > 0, "the kill came before any enrollment was acknowledged"
    assert result.lost == [], lines
    assert not any(result.half_written.values()), result.half_written
    assert result.left_training == 0
