"""The landing page and the offline documentation pages of the live server, over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import LiveServer

pytestmark = pytest.mark.integration


def test_landing_docs_and_their_assets(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url, timeout=30) as client:
        landing = client.get("/")
        assert landing.status_code == 200 and 'href="/docs"' in landing.text
        for page, asset in (
            ("/docs", "/docs-assets/swagger-ui-bundle.js"),
            ("/redoc", "/docs-assets/redoc.standalone.js"),
        ):
            response = client.get(page)
            assert response.status_code == 200 and asset in response.text
            assert "cdn" not in response.text and "fonts.googleapis" not in response.text
            served = client.get(asset)
            assert served.status_code == 200 and "javascript" in served.headers["content-type"]
        schema = client.get("/openapi.json").json()
        assert (
            schema["paths"]["/v1/identify"]["post"]["responses"]["409"]["content"][
                "application/json"
            ]["example"]["data"]
            is None
        )
