"""The web console's files: served by the app, linked from the landing page, nothing from
elsewhere. The page's behaviour is tested in Chromium (integration/test_console_browser.py)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_console_page_and_its_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/console-assets/console.js" in sources and "/console-assets/console.css" in sources
    assert all(s.startswith("/") for s in sources), sources  # no CDN, no other site
    for asset, kind in (("console.js", "javascript"), ("console.css", "text/css")):
        served = client.get(f"/console-assets/{asset}")
        assert served.status_code == 200 and kind in served.headers["content-type"]
        assert "http://" not in served.text and "https://" not in served.text


def test_console_script_sends_the_key_only_to_this_server(client: TestClient) -> None:
    script = client.get("/console-assets/console.js").text
    assert "sessionStorage" in script and "localStorage" not in script
    assert re.findall(r"fetch\(([^,]+),", script) == ["`/v1${path}`"]


def test_landing_page_links_the_console(client: TestClient) -> None:
    assert 'href="/console"' in client.get("/").text
