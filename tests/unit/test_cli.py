"""The command line's argument parsing (no command is run)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from facegate import __version__
from facegate.cli import build_parser, main


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


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += _all_parsers(child)
    return found


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{parser.prog} {action.dest}"
        for parser in _all_parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"facegate {__version__}"


@pytest.mark.parametrize(
    ("group", "subcommand"),
    [
        ("keys", "create"),
        ("eval", "lfw"),
        ("spoof", "train"),
        ("collections", "train"),
        ("enrollments", "delete"),
    ],
)
def test_a_group_without_its_subcommand_prints_its_help(
    group: str, subcommand: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([group]) == 2
    out = capsys.readouterr()
    assert f"usage: facegate {group}" in out.out and subcommand in out.out
    assert "required" not in out.err


def test_client_commands_parse() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["enroll", "--name", "Ada", "a.jpg", "b.jpg", "--collection", "c1", "--json"]
    )
    assert (args.client_command, args.name, args.collection, args.json) == (
        "enroll",
        "Ada",
        "c1",
        True,
    )
    assert args.images == [Path("a.jpg"), Path("b.jpg")] and args.url is None
    args = parser.parse_args(["identify", "--collection", "c1", "g.jpg", "--top-k", "3"])
    assert (args.top_k, args.all_faces) == (3, False)
    args = parser.parse_args(["collections", "add", "c1", "e1", "e2", "--url", "http://x:1"])
    assert (args.client_command, args.enrollments, args.url) == (
        "collections_add",
        ["e1", "e2"],
        "http://x:1",
    )
    args = parser.parse_args(["enrollments", "list", "--limit", "10", "--offset", "20"])
    assert (args.client_command, args.limit, args.offset, args.all) == (
        "enrollments_list",
        10,
        20,
        False,
    )
    args = parser.parse_args(["enrollments", "show", "e1", "e2"])
    assert (args.client_command, args.enrollments) == ("enrollments_show", ["e1", "e2"])
    with pytest.raises(SystemExit):
        parser.parse_args(["enrollments", "list", "--limit", "501"])


def test_expand_images_reads_folders_in_order_and_refuses_what_is_missing(
    tmp_path: Path,
) -> None:
    from facegate.client.commands import CommandError, expand_images

    for name in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    single = tmp_path / "a.png"
    assert expand_images([single]) == ([single], False)
    assert expand_images([tmp_path]) == ([tmp_path / "a.png", tmp_path / "b.JPG"], True)
    with pytest.raises(CommandError, match="no such file"):
        expand_images([tmp_path / "nope.jpg"])
    with pytest.raises(CommandError, match=r"no \.jpg"):
        expand_images([tmp_path / "sub"])


def test_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from facegate.client.commands import Progress

    stream = io.StringIO()
    progress = Progress(2, True, stream)
    progress.step("a.jpg")
    progress.step("b.jpg")
    assert stream.getvalue() == "[1/2] a.jpg\n[2/2] b.jpg\n"
    quiet = io.StringIO()
    Progress(1, False, quiet).step("a.jpg")
    assert quiet.getvalue() == ""


def test_keys_say_their_data_folder_and_never_create_a_store_to_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # a folder without ./data, as when run from elsewhere
    assert main(["keys", "list"]) == 1
    err = capsys.readouterr().err
    assert f"data folder {tmp_path / 'data'} (the default: ./data in the current folder" in err
    assert "no store at sqlite:///" in err and "--data-dir" in err
    assert not (tmp_path / "data").exists()
    assert main(["keys", "revoke", "k1"]) == 1
    assert not (tmp_path / "data").exists()

    server = tmp_path / "srv"
    assert main(["keys", "create", "app", "--data-dir", str(server)]) == 0
    captured = capsys.readouterr()
    assert f"data folder {server} (from --data-dir)" in captured.err
    assert "a new, empty store is made at" in captured.err and "fg_" in captured.out
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(server))
    assert main(["keys", "list"]) == 0
    captured = capsys.readouterr()
    assert f"data folder {server} (from FACEGATE_DATA_DIR or .env)" in captured.err
    assert "\tapp\tactive\t" in captured.out and "new, empty store" not in captured.err


def test_every_eval_command_takes_a_json_path(tmp_path: Path) -> None:
    parser = build_parser()
    for command in ("lfw", "calibrate", "detect", "parity", "spoof"):
        args = parser.parse_args(["eval", command, str(tmp_path), "--json", "out.json"])
        assert args.json == Path("out.json")
    assert parser.parse_args(["eval", "lfw", str(tmp_path)]).json is None


@pytest.mark.parametrize("name", ["load", "faults", "memory"])
def test_live_benches_need_no_data_folder(name: str) -> None:
    args = build_parser().parse_args(["bench", name, "--clients", "3", "--seconds", "5"])
    assert args.data_dir_arg == name and args.clients == 3 and args.seconds == 5.0
    assert args.rounds == 3 and args.hammer is False
