"""Debian's ``chromium`` driven by Playwright for Python: for the console's browser test and the
documentation screenshots (both dev uses: playwright is a dev dependency, imported only here).

The system browser is used, never one Playwright downloads (``playwright install`` needs the
internet; ``make test`` installs Debian's package instead). Every page is kept on the server under
test: a request for any other origin is aborted and recorded, so a page that needs the internet
is seen to fail, and the offline claims are checked rather than assumed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Route

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # runs as root in CI containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_HINT = (
    "Debian's chromium is not installed: `make test` installs it "
    "(apt-get install chromium), as does `make screenshots`"
)


def chromium_path() -> str | None:
    """The system browser, or None when the package is missing."""
    found = shutil.which("chromium")
    return found or (CHROMIUM if Path(CHROMIUM).exists() else None)


@dataclass
class Session:
    context: BrowserContext
    blocked: list[str] = field(default_factory=list)  # requests for other origins, aborted


@contextmanager
def browser(origin: str, *, width: int = 1200, height: int = 900) -> Iterator[Session]:
    """A fresh headless Chromium (its own throw-away profile) that may reach only ``origin``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError(INSTALL_HINT)
    profile = tempfile.mkdtemp(prefix="facegate-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                args=list(CHROMIUM_ARGS),
                headless=True,
                viewport={"width": width, "height": height},
            )
            session = Session(context)

            def keep_local(route: Route) -> None:
                url = route.request.url
                if url.startswith((f"{origin}/", "data:", "blob:")) or url == origin:
                    route.continue_()
                else:
                    session.blocked.append(url)
                    route.abort("internetdisconnected")

            context.route("**/*", keep_local)
            try:
                yield session
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
