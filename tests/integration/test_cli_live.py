"""The file-based client commands end to end: real files and folders, the live server, real
HTTP. Commands run in-process through ``facegate.cli.main`` (one also as a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from facegate.cli import main
from tests.integration.conftest import LiveServer, Photos

pytestmark = pytest.mark.integration


class Cli:
    def __init__(self, live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
        self.live = live
        self.capsys = capsys

    def __call__(self, *argv: str, key: str | None = "alice", status: int = 0) -> str:
        """Runs ``facegate ARGV --url ... --key ...``; its stdout."""
        server = ["--url", self.live.base_url]
        if key is not None:
            server += ["--key", self.live.keys[key]]
        self.capsys.readouterr()
        assert main([*argv, *server]) == status, self.capsys.readouterr()
        self.out, self.err = self.capsys.readouterr()
        return self.out

    def json(self, *argv: str, **kwargs: Any) -> Any:
        return json.loads(self(*argv, "--json", **kwargs))


@pytest.fixture
def cli(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(live, capsys)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, photos: type[Photos]) -> Path:
    """grace/ (11 photos: more than one request holds), eileen/, a stranger, a group, nobody."""
    root = tmp_path_factory.mktemp("cli")
    (root / "grace").mkdir()
    for i in range(11):
        (root / "grace" / f"grace{i:02}.jpg").write_bytes(photos.grace(i % 3))
    (root / "eileen").mkdir()
    for i in range(2):
        (root / "eileen" / f"eileen{i}.jpg").write_bytes(photos.eileen(i))
    (root / "grace-new.jpg").write_bytes(photos.grace(5))
    (root / "eileen-new.jpg").write_bytes(photos.eileen(3))
    (root / "stranger.jpg").write_bytes(photos.member(0))
    (root / "both.jpg").write_bytes(photos.side_by_side())
    (root / "nobody.jpg").write_bytes(photos.no_face())
    return root


def test_detect_files_and_folders(cli: Cli, files: Path) -> None:
    out = cli("detect", str(files / "both.jpg"), str(files / "nobody.jpg"))
    assert f"{files / 'both.jpg'}: 2 faces" in out and f"{files / 'nobody.jpg'}: 0 faces" in out
    assert "confidence" in out and "sharpness" in out
    results = cli.json("detect", str(files / "eileen"), "--landmarks")
    assert [Path(r["image"]).name for r in results] == ["eileen0.jpg", "eileen1.jpg"]
    # The largest face comes first (the astronaut photo has a second, small one).
    assert all(len(r["faces"][0]["landmarks"]) == 68 for r in results)
    assert cli.err.splitlines() == ["[1/2] eileen0.jpg", "[2/2] eileen1.jpg"]  # a folder: progress


def test_enroll_train_identify_match_and_clean_up(cli: Cli, files: Path) -> None:
    collection = cli.json("collections", "create", "cli home")["collection_id"]
    grace = cli.json("enroll", "--name", "Grace Hopper", str(files / "grace"))
    assert len(grace["images"]) == 11  # sent as 10 + 1
    out = cli(
        "enroll", "--name", "Eileen Collins", str(files / "eileen"), "--collection", collection
    )
    assert "enrolled 'Eileen Collins' from 2 images in collection" in out
    eileen = out.rsplit("enrollment ", 1)[1].strip()
    assert "added enrollment" in cli("collections", "add", collection, grace["enrollment_id"])
    assert "ready" in cli("collections", "train", collection)

    listed = {c["id"]: c for c in cli.json("collections", "list")}
    assert listed[collection]["status"] == "ready"
    assert sorted(listed[collection]["enrollment_ids"]) == sorted([grace["enrollment_id"], eileen])
    assert "cli home\tready\t2 enrollments" in cli("collections", "list")

    out = cli("identify", "--collection", collection, str(files / "grace-new.jpg"))
    assert out.startswith(f"{files / 'grace-new.jpg'}: Grace Hopper (enrollment ")
    out = cli("identify", "--collection", collection, str(files / "stranger.jpg"), "--top-k", "2")
    assert ": unknown (best score" in out and out.count("candidate ") == 2
    (both,) = cli.json(
        "identify", "--collection", collection, str(files / "both.jpg"), "--all-faces"
    )
    assert [f["name"] for f in both["faces"]] == ["Grace Hopper", "Eileen Collins"]
    # One image without a face is reported; the others are still identified (exit status 1).
    folder = files / "mixed"
    folder.mkdir()
    for name in ("eileen-new.jpg", "nobody.jpg"):
        (folder / name).write_bytes((files / name).read_bytes())
    results = cli.json("identify", "--collection", collection, str(folder), status=1)
    assert [r["name"] for r in results] == ["Eileen Collins"]
    assert "nobody.jpg: img: no face found" in cli.err

    out = cli("match", "--enrollment", grace["enrollment_id"], str(files / "grace-new.jpg"))
    assert ": match with enrollment" in out and "over 11 embeddings" in out
    verdict = cli.json(
        "match", "--enrollment", eileen, str(files / "stranger.jpg"), "--threshold", "0.4"
    )
    assert verdict["match"] is False and len(verdict["scores"]) == 2
    cli("match", "--enrollment", eileen, str(files / "stranger.jpg"), "--exit-code", status=3)

    listed = cli.json("enrollments", "list", "--all")
    mine = {e["id"]: e for e in listed["enrollments"]}
    assert mine[grace["enrollment_id"]]["images"] == 11 and listed["total"] == len(mine)
    assert mine[eileen]["collection_ids"] == [collection]
    out = cli("enrollments", "show", eileen)
    assert out.startswith(f"{eileen}\tEileen Collins\t2 images\t{collection}\t2 by sface@")
    out = cli("enrollments", "list", "--limit", "1")
    assert out.count("\n") == 1 and "the next page: --offset 1" in cli.err

    assert "deleted enrollment" in cli("enrollments", "delete", eileen)
    assert "deleted collection" in cli("collections", "delete", collection)
    assert collection not in {c["id"] for c in cli.json("collections", "list")}


def test_collections_by_name_created_and_trained_by_enroll(cli: Cli, files: Path) -> None:
    """The README's quick start: two enrollments name a collection that does not exist yet,
    and identify finds them by that name with no explicit training."""
    first = cli.json(
        "enroll",
        "--name",
        "Grace Hopper",
        str(files / "grace" / "grace00.jpg"),
        "--collection",
        "cli friends",
    )
    assert first["collection_created"] is True and first["trained"] is True
    assert "created collection 'cli friends'" in cli.err and "trained" in cli.err
    second = cli.json(
        "enroll", "--name", "Eileen Collins", str(files / "eileen"), "--collection", "cli friends"
    )
    assert second["collection_id"] == first["collection_id"]
    assert second["collection_created"] is False
    out = cli(
        "identify",
        "--collection",
        "cli friends",
        "--all-faces",
        str(files / "both.jpg"),
        str(files / "stranger.jpg"),
    )
    assert ": Grace Hopper (enrollment" in out and ": Eileen Collins (enrollment" in out
    assert f"{files / 'stranger.jpg'}: unknown (best score" in out
    cli("identify", "--collection", "nobody's", str(files / "both.jpg"), status=1)
    assert 'no collection with the id or name "nobody\'s"' in cli.err
    cli("collections", "delete", first["collection_id"])


def test_refusals_are_one_line_and_status_1(cli: Cli, files: Path) -> None:
    cli("enroll", "--name", "Nobody", str(files / "nobody.jpg"), status=1)
    assert cli.err.strip() == "facegate enroll: img0: no face found"
    cli("collections", "train", "no-such-collection", status=1)
    assert "no-such-collection" in cli.err
    cli("identify", "--collection", "x", str(files / "missing.jpg"), status=1)
    assert "missing.jpg: no such file or folder" in cli.err
    cli("collections", "list", key=None, status=1)
    assert "missing API key" in cli.err and "FACEGATE_API_KEY" in cli.err
    cli("collections", "list", key="revoked", status=1)


def test_url_and_key_come_from_the_settings(
    live: LiveServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEGATE_API_URL", live.base_url)
    monkeypatch.setenv("FACEGATE_API_KEY", live.keys["bob"])
    assert main(["collections", "list", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_the_installed_entry_point(live: LiveServer, files: Path) -> None:
    env = {**os.environ, "FACEGATE_API_URL": live.base_url, "FACEGATE_API_KEY": live.keys["alice"]}
    done = subprocess.run(
        [sys.executable, "-m", "facegate.cli", "detect", "--json", str(files / "grace-new.jpg")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)
    assert len(result["faces"]) == 1 and done.stderr == ""
