"""The pages for people: the landing page, /docs and /redoc from local assets (no CDN), and an
OpenAPI schema with an example for every request and answer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient


def test_landing_page_links_the_docs_and_operations(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    for link in ("/docs", "/redoc", "/healthz", "/readyz", "/openapi.json"):
        assert f'href="{link}"' in response.text
    assert "http" not in response.text  # nothing loaded from elsewhere


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"]),
        ("/redoc", ["/docs-assets/redoc.standalone.js"]),
    ],
)
def test_docs_pages_load_only_local_assets(
    client: TestClient, page: str, assets: list[str]
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    # Every URL the page loads is local: no CDN, no Google fonts.
    loaded = re.findall(r'(?:src|href)=["\']([^"\']+)', response.text)
    loaded += re.findall(r"url: ?['\"]([^'\"]+)", response.text)
    assert loaded and all(url.startswith("/") for url in loaded), loaded
    for asset in assets:
        assert asset in response.text
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 10_000


def test_swagger_ui_is_version_5_for_openapi_3_1(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    # Swagger UI 5 is the first to render OpenAPI 3.1; its bundle names its own version.
    assert re.search(r'"5\.\d+\.\d+"', bundle)


def _walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


def test_every_request_and_answer_has_an_example(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = [
        (path, method, op)
        for path, methods in schema["paths"].items()
        if path.startswith("/v1")
        for method, op in methods.items()
    ]
    assert len(operations) == 14
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        if "requestBody" in op:
            content = op["requestBody"]["content"]
            assert content["application/json"].get("example"), where
        for status, answer in op["responses"].items():
            example = answer["content"]["application/json"].get("example")
            assert example is not None and set(example) == {"data", "message", "success"}, (
                where,
                status,
            )
            if status != "200":
                assert "x-facegate-error" in answer["headers"], (where, status)
    enroll = schema["paths"]["/v1/enroll"]["post"]["requestBody"]["content"]
    assert "img0" in enroll["application/json"]["example"]
    assert enroll["multipart/form-data"]["schema"]["properties"]["img0"]["format"] == "binary"
    for path in ("/v1/facedetect", "/v1/spdetect", "/v1/match", "/v1/identify"):
        assert "multipart/form-data" in schema["paths"][path]["post"]["requestBody"]["content"]


def test_the_schema_uses_json_schema_bounds(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert not [node for node in _walk(schema) if {"ge", "le", "gt", "lt"} & node.keys()]
    body = schema["paths"]["/v1/identify"]["post"]["requestBody"]["content"]["application/json"]
    assert {"minimum": 1, "type": "integer"} in body["schema"]["properties"]["top_k"]["anyOf"]
