"""The command line's argument parsing (no command is run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.cli import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "--data-dir", "/srv/fg", "create", "app"],
        ["keys", "create", "app", "--data-dir", "/srv/fg"],
        ["keys", "--data-dir", "/srv/fg", "list"],
        ["keys", "revoke", "k1", "--data-dir", "/srv/fg"],
    ],
)
def test_keys_data_dir_before_or_after_the_subcommand(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).data_dir == Path("/srv/fg")


def test_keys_without_data_dir_leaves_it_to_the_settings() -> None:
    assert build_parser().parse_args(["keys", "list"]).data_dir is None


def test_bench_detector_flag() -> None:
    args = build_parser().parse_args(["bench", "/data", "--detector", "--repeats", "3"])
    assert args.detector and args.repeats == 3 and args.data_dir_arg == Path("/data")


def test_bench_http_flag() -> None:
    args = build_parser().parse_args(["bench", "/data", "--http"])
    assert args.http and not args.detector


def test_bench_variants_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "/data", "--http", "--detector"])
    assert "not allowed with" in capsys.readouterr().err
