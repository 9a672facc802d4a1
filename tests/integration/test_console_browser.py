"""The web console in a real headless Chromium (Debian's package, driven by Playwright) against
the live server: paste a key, upload package-shipped photos through the file input, detect,
enroll two people into a new collection, train, identify a picture of both, match, and read
a refusal's message and code; all read back from the page's DOM.

The test fails, never skips, without chromium: ``make test`` installs it first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from facegate.eval.browser import INSTALL_HINT, Session, browser, chromium_path
from tests.factories import _package_dir
from tests.integration.conftest import LiveServer, Photos

pytestmark = pytest.mark.integration

TIMEOUT_MS = 120_000  # the first calls of a cold server on two shared cores can be slow


def shipped(package: str, *parts: str) -> Path:
    path = _package_dir(package).joinpath(*parts)
    assert path.is_file(), path
    return path


@pytest.fixture
def chromium(live: LiveServer) -> Iterator[Session]:
    if chromium_path() is None:
        pytest.fail(INSTALL_HINT)
    with browser(live.base_url) as session:
        session.context.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        yield session


def test_console_enrolls_trains_and_identifies(
    live: LiveServer, photos: type[Photos], chromium: Session, tmp_path: Path
) -> None:
    grace = shipped("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")
    eileen = shipped("skimage", "data", "astronaut.png")
    group = shipped("insightface", "data", "images", "t1.jpg")
    both = tmp_path / "both.jpg"
    both.write_bytes(photos.side_by_side())
    nobody = tmp_path / "nobody.jpg"
    nobody.write_bytes(photos.no_face())

    page = chromium.context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    result, error = page.locator("#result"), page.locator("#error")

    page.goto(f"{live.base_url}/")
    page.get_by_role("link", name="Web console").click()
    page.wait_for_url("**/console")

    page.get_by_label("API key", exact=True).fill(live.keys["alice"])
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#result")).to_have_text("key accepted")
    assert page.evaluate("sessionStorage.getItem('facegate.apiKey')") == live.keys["alice"]
    assert page.get_by_label("API key", exact=True).input_value() == ""  # not left on the screen

    # Detect: the group photo's six faces, boxes and points drawn at the photo's scale.
    page.get_by_label("Photo file", exact=True).set_input_files(group)
    expect(page.locator("#photo-state")).to_contain_text("t1.jpg")
    page.get_by_role("button", name="Detect faces").click()
    expect(page.locator("#result")).to_have_text("6 faces found")
    assert page.locator("#faces li").count() == 6
    with Image.open(group) as image:
        width, height = image.size
    drawn = page.evaluate("(c => [c.width, c.height])(document.getElementById('canvas'))")
    assert drawn == [900, round(height * 900 / width)]  # scaled to fit the page

    # A collection, and two people enrolled into it from their photos.
    page.get_by_label("New collection name", exact=True).fill("Console friends")
    page.get_by_role("button", name="Create collection").click()
    expect(page.locator("#result")).to_have_text(re.compile(r"^created"))
    for path, name in ((grace, "Grace Hopper"), (eileen, "Eileen Collins")):
        page.get_by_label("Photo file", exact=True).set_input_files(path)
        expect(page.locator("#photo-state")).to_contain_text(path.name)
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_role("button", name="Enroll this photo").click()
        expect(result).to_have_text(re.compile(f"^enrolled {name}: "))
    row = page.locator("#collections tbody tr", has_text="Console friends")
    assert row.locator("td").nth(2).inner_text() == "2"

    page.get_by_role("button", name="Train").click()
    expect(page.locator("#result")).to_contain_text("trained")
    assert result.inner_text() == "collection Console friends trained: status ready"
    assert row.locator("td").nth(3).inner_text() == "ready"

    # Identify every face of a picture of both: each name on its own face, left to right.
    page.get_by_label("Photo file", exact=True).set_input_files(both)
    expect(page.locator("#photo-state")).to_contain_text("both")
    page.get_by_role("button", name="Identify every face").click()
    expect(page.locator("#result")).to_have_text(re.compile(r"^ident"))
    faces = page.locator("#faces li")
    assert faces.count() == 2
    by_x = sorted(
        (float(text.split("(")[1].split(",")[0]), name)
        for text, name in zip(
            faces.all_inner_texts(),
            [faces.nth(i).get_attribute("data-name") for i in range(2)],
            strict=True,
        )
    )
    assert [name for _, name in by_x] == ["Grace Hopper", "Eileen Collins"]
    assert "identified 2 faces" in result.inner_text()
    assert error.is_hidden()

    # Match the same picture against Grace's enrollment.
    grace_option = _option(page, "Grace")
    page.get_by_label("Match against enrollment", exact=True).select_option(label=grace_option)
    page.get_by_role("button", name="Match", exact=True).click()
    expect(page.locator("#result")).to_have_text(re.compile(r"^match"))
    assert "MATCH\nemb0: " in result.inner_text()

    # The spoof check of the same picture (its largest face).
    page.get_by_role("button", name="Spoof check").click()
    expect(result).to_have_text(re.compile(r"^spoof check: real \(probability of a fake 0\.\d+\)$"))

    # Another collection: Grace's enrollment added to it, then the collection deleted.
    page.get_by_label("New collection name", exact=True).fill("Console spare")
    page.get_by_role("button", name="Create collection").click()
    expect(result).to_have_text(re.compile(r"^created collection Console spare"))
    page.get_by_label("Enrollment", exact=True).select_option(label=grace_option)
    page.get_by_role("button", name="Add to collection").click()
    expect(result).to_have_text(re.compile(r"^enrollment \S+ added to collection"))
    spare = page.locator("#collections tbody tr", has_text="Console spare")
    expect(spare.locator("td").nth(2)).to_have_text("1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete collection").click()
    expect(result).to_have_text(re.compile(r"^collection \S+ deleted"))
    expect(spare).to_have_count(0)
    expect(row).to_have_count(1)

    # A refusal: enrolling a photo with nobody in it shows the envelope's message and the code.
    page.get_by_label("Photo file", exact=True).set_input_files(nobody)
    expect(page.locator("#photo-state")).to_contain_text("nobody")
    page.get_by_label("Name", exact=True).fill("Nobody")
    page.get_by_role("button", name="Enroll this photo").click()
    expect(error).to_be_visible()
    assert error.inner_text() == "HTTP 422 no_face_found: img0: no face found"
    assert page.get_by_role("alert").inner_text() == error.inner_text()

    assert chromium.blocked == [] and page_errors == []


def _option(page: Page, starts: str) -> str:
    """The label of the first enrollment option starting with ``starts``."""
    labels = page.locator("#match-enrollment option").all_inner_texts()
    return next(label for label in labels if label.startswith(starts))


def test_console_shows_a_wrong_key_refusal(live: LiveServer, chromium: Session) -> None:
    page = chromium.context.new_page()
    page.goto(f"{live.base_url}/console")
    page.get_by_label("API key", exact=True).fill(live.keys["revoked"])
    page.get_by_role("button", name="Use this key").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^HTTP 401 unauthorized: \S"))
    assert page.locator("#error").get_attribute("data-code") == "unauthorized"
    # Nothing to show for that key, and nothing asked of another site.
    expect(page.locator("#collections tbody tr")).to_have_count(0)
    assert chromium.blocked == []
