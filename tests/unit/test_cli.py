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


def test_bench_detector_flag(tmp_path: Path) -> None:
    args = build_parser().parse_args(["bench", str(tmp_path), "--detector", "--repeats", "3"])
    assert args.detector and args.repeats == 3 and args.data_dir_arg == tmp_path


def test_bench_http_flag(tmp_path: Path) -> None:
    args = build_parser().parse_args(["bench", str(tmp_path), "--http"])
    assert args.http and not args.detector


def test_bench_variants_are_exclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", str(tmp_path), "--http", "--detector"])
    assert "not allowed with" in capsys.readouterr().err


def test_a_missing_data_folder_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "/no/such/folder", "--detector"])
    assert "/no/such/folder: no such folder" in capsys.readouterr().err


def test_benches_refuse_a_folder_without_lfw_before_measuring(tmp_path: Path) -> None:
    from facegate.eval.detector_bench import run_detector_bench
    from facegate.eval.http_bench import run_http_bench

    with pytest.raises(SystemExit, match="no LFW images"):
        run_detector_bench(tmp_path)
    with pytest.raises(SystemExit, match="needs LFW photos"):
        run_http_bench(tmp_path)


@pytest.mark.parametrize("name", ["load", "faults", "memory"])
def test_live_benches_need_no_data_folder(name: str) -> None:
    args = build_parser().parse_args(["bench", name, "--clients", "3", "--seconds", "5"])
    assert args.data_dir_arg == name and args.clients == 3 and args.seconds == 5.0
    assert args.rounds == 3 and args.hammer is False
