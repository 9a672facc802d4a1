"""The web console at ``/console``: one HTML page, one script and one style sheet shipped as
package data. The page calls the public ``/v1`` API with the user's key, like any other client,
so nothing here knows about faces; this module only serves the files."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

CONSOLE_URL = "/console"
CONSOLE_ASSETS_URL = "/console-assets"

router = APIRouter(include_in_schema=False)


def console_dir() -> Path:
    return Path(str(files("facegate.api") / "static" / "console"))


def install_console(app: FastAPI) -> None:
    app.mount(CONSOLE_ASSETS_URL, StaticFiles(directory=console_dir()), name="console-assets")
    app.include_router(router)


@router.get(CONSOLE_URL)
async def console() -> HTMLResponse:
    # The page holds a pasted API key: no caching by shared proxies, no framing by other sites.
    return HTMLResponse(
        (console_dir() / "index.html").read_text(encoding="utf-8"),
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' blob: data:; "
                "media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'"
            ),
            "Referrer-Policy": "no-referrer",
        },
    )
