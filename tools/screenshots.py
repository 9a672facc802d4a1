"""Generates the README's screenshots into OUT_DIR (``make screenshots`` writes docs/screenshots):

- ``docs.png``: /docs (Swagger UI) rendered with every request for another origin refused, so
  it shows what a machine without internet sees;
- ``console-identify.png``: /console after identifying a picture of two enrolled people;
- ``det.png``: the DET plot that ``facegate eval lfw`` writes (three folds of LFW, engine path)
  when DATA holds LFW, else the same plotting code (facegate.eval.report) fed with synthetic
  scores, titled as such.

A live ``facegate serve`` on a free port with a fresh data folder serves the pages; Debian's
chromium, driven by Playwright, takes the pictures. Run from a checkout with the dev extras:
``python tools/screenshots.py docs/screenshots [--data ../shared/facedata]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facegate.config import Settings  # noqa: E402
from facegate.eval.browser import browser  # noqa: E402
from facegate.eval.serve_process import ServeProcess  # noqa: E402
from facegate.service.keys import create_key  # noqa: E402

TIMEOUT_MS = 120_000
# The child runs this checkout's facegate, whatever PYTHONPATH says.
_CLI = (
    f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r}); "
    "from facegate.cli import main; sys.exit(main())"
)


def site_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def photos(folder: Path) -> dict[str, Path]:
    """The package-shipped photos the console screenshot uses, and a picture of both people."""
    grace = site_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    eileen = site_file("skimage", "data", "astronaut.png")
    with Image.open(grace) as left_image, Image.open(eileen) as right_image:
        left = np.asarray(left_image.convert("RGB"))
        right = np.asarray(right_image.convert("RGB"))
    height = min(left.shape[0], right.shape[0])
    both = folder / "grace-and-eileen.jpg"
    Image.fromarray(np.hstack([left[:height], right[:height]])).save(both, quality=92)
    return {"grace": grace, "eileen": eileen, "both": both}


def shoot_pages(out: Path, work: Path) -> None:
    data_dir = work / "data"
    key = create_key(Settings(data_dir=data_dir), "screenshots").secret
    server = ServeProcess(data_dir, work / "server.log")
    try:
        server.wait_until("/readyz", lambda r: r.status_code == 200, 300)
        with browser(server.url, width=1280, height=900) as session:
            session.context.set_default_timeout(TIMEOUT_MS)
            page = session.context.new_page()
            page.goto(f"{server.url}/docs")
            page.wait_for_selector(".opblock-tag", state="visible")
            page.screenshot(path=out / "docs.png")
            if session.blocked:
                raise SystemExit(f"/docs asked for other origins: {session.blocked}")
            console(page, server.url, key, photos(work), out / "console-identify.png")
            if session.blocked:
                raise SystemExit(f"/console asked for other origins: {session.blocked}")
    finally:
        server.stop()


def console(page: object, url: str, key: str, images: dict[str, Path], target: Path) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    expect.set_options(timeout=TIMEOUT_MS)
    result = page.locator("#result")
    page.goto(f"{url}/console")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Use this key").click()
    expect(result).to_have_text("key accepted")
    page.get_by_label("New collection name", exact=True).fill("Friends")
    page.get_by_role("button", name="Create collection").click()
    expect(result).to_have_text(re.compile("^created"))
    for name, photo in (("Grace Hopper", images["grace"]), ("Eileen Collins", images["eileen"])):
        page.get_by_label("Photo file", exact=True).set_input_files(photo)
        expect(page.locator("#photo-state")).to_contain_text(photo.name)
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_role("button", name="Enroll this photo").click()
        expect(result).to_have_text(re.compile(f"^enrolled {name}"))
    page.get_by_role("button", name="Train").click()
    expect(result).to_contain_text("trained: status ready")
    page.get_by_label("Photo file", exact=True).set_input_files(images["both"])
    expect(page.locator("#photo-state")).to_contain_text(images["both"].name)
    page.get_by_role("button", name="Identify every face").click()
    expect(result).to_have_text(re.compile("^identified 2 faces"))
    # The photo, its drawn names and the answer, with the page's heading for context.
    page.evaluate("document.getElementById('photo-heading').scrollIntoView()")
    page.screenshot(path=target)


def det_plot(out: Path, work: Path, data: Path | None) -> None:
    if data is not None and (data / "lfw").is_dir():
        # The real thing: facegate eval lfw's JSON and plots, on three folds of LFW.
        report = work / "lfw.json"
        command = [sys.executable, "-c", _CLI, "eval", "lfw", str(data), "--folds", "3"]
        command += ["--engine-only", "--detector", "yunet", "--recognizer", "sface"]
        command += ["--json", str(report)]
        # From the checkout: its data folder (./data) keeps the embedding cache for reruns.
        subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603
        shutil.copyfile(work / "lfw-det.png", out / "det.png")
        return
    synthetic_det(out, work)


def synthetic_det(out: Path, work: Path) -> None:
    """Without LFW: the eval report's own plotting code fed with synthetic scores (two normal
    distributions of similarity), titled as such: it shows the plot, not facegate's accuracy."""
    from facegate.eval.report import record_curve, reporting

    rng = np.random.default_rng(13)
    genuine = rng.normal(0.7, 0.12, 3000)
    impostor = rng.normal(0.3, 0.12, 3000)
    scores = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(3000, bool), np.zeros(3000, bool)])
    report = work / "synthetic.json"
    with reporting("eval (synthetic scores: no LFW in DATA)", ["synthetic"], report):
        record_curve("synthetic genuine N(0.7, 0.12) vs impostor N(0.3, 0.12)", scores, same)
    shutil.copyfile(work / "synthetic-det.png", out / "det.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where the PNG files go (docs/screenshots)")
    parser.add_argument("--data", type=Path, help="the facedata folder; its lfw/ for the DET plot")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facegate-screenshots-") as tmp:
        work = Path(tmp)
        shoot_pages(out, work)
        det_plot(out, work, args.data)
    for png in sorted(out.glob("*.png")):
        with Image.open(io.BytesIO(png.read_bytes())) as image:
            print(f"{png}: {image.size[0]} × {image.size[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
