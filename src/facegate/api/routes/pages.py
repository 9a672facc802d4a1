"""The pages for people: a landing page at ``/`` and the interactive docs at ``/docs`` and
``/redoc``, served with their assets from an installed package, so they work without internet.

The assets (Swagger UI 5, which reads OpenAPI 3.1, and ReDoc 2) ship in the ``fastapi-offline``
wheel; only its files are used, not its app factory, so the app is built as everywhere else.
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from facegate import __version__

ASSETS_URL = "/docs-assets"
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_pages(app: FastAPI) -> None:
    """The landing page, the two documentation pages and their static assets."""
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
    app.include_router(router)


@router.get(DOCS_URL)
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="facegate - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="facegate - ReDoc",
        redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
        with_google_fonts=False,  # fonts from Google are a CDN too
    )


_LINKS = (
    ("/console", "Web console", "detect, enroll, train, identify from a browser"),
    (DOCS_URL, "Interactive API documentation", "Swagger UI: try every endpoint with your key"),
    (REDOC_URL, "API reference", "ReDoc: every request and answer, with examples"),
    ("/openapi.json", "OpenAPI schema", "for code generators"),
    ("/healthz", "Health", "the process is alive"),
    ("/readyz", "Readiness", "models loaded and store reachable"),
    ("/metrics", "Metrics", "Prometheus"),
)


@router.get("/")
async def landing() -> HTMLResponse:
    items = "\n".join(
        f'      <li><a href="{url}">{html.escape(title)}</a> <span>{html.escape(note)}</span></li>'
        for url, title, note in _LINKS
    )
    page = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>facegate</title>
    <link rel="icon" href="{ASSETS_URL}/favicon.png">
    <style>
      body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto;
             padding: 0 1rem; color: #1d232a; }}
      h1 {{ margin-bottom: 0; }} li {{ margin: .4rem 0; }} span {{ color: #5a6570; }}
      code {{ background: #f1f3f5; padding: .1rem .3rem; border-radius: 3px; }}
    </style>
  </head>
  <body>
    <h1>facegate</h1>
    <p>Self-hosted face recognition speaking the Trueface v1 REST API (version
      {html.escape(__version__)}). The API is under <code>/v1</code>; every request needs an
      <code>x-api-key</code> header (an operator makes keys with
      <code>facegate keys create NAME</code>).</p>
    <ul>
{items}
    </ul>
  </body>
</html>
"""
    return HTMLResponse(page)
