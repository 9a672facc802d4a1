"""Health, readiness, metrics, docs and the request log."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from facegate.api.logs import JsonFormatter
from facegate.api.middleware import accepts_json, body_limit
from facegate.config import Settings
from facegate.service.container import Services

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine, Tenants


def test_healthz_and_readyz(client: TestClient, engine: FakeEngine) -> None:
    assert client.get("/healthz").json() == {
        "data": {"status": "alive"},
        "message": "alive",
        "success": True,
    }
    assert client.get("/readyz").status_code == 200
    engine.loaded = False
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert "models" in not_ready.json()["message"]


def test_readyz_is_503_when_the_store_is_unreachable(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise ConnectionError("down")

    monkeypatch.setattr(services.database, "ping", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503 and "store" in response.json()["message"]


def test_metrics_count_requests_by_route_template_and_status(
    client: TestClient, tenants: Tenants
) -> None:
    client.get("/v1/collection", headers=tenants.alice)
    client.get("/v1/collection")
    text = client.get("/metrics").text
    assert (
        'facegate_http_requests_total{method="GET",route="/v1/collection",status="200"} 1.0' in text
    )
    assert (
        'facegate_http_requests_total{method="GET",route="/v1/collection",status="401"} 1.0' in text
    )
    assert "facegate_http_request_duration_seconds_bucket" in text
    assert "facegate_inference_in_flight 0.0" in text


def test_openapi_documents_every_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/enroll"]) == {"post", "put", "delete", "get"}
    assert set(paths["/v1/enroll/{enrollment_id}"]) == {"get"}
    assert set(paths["/v1/collection"]) == {"post", "put", "delete", "get"}
    for path in ("/v1/spdetect", "/v1/facedetect", "/v1/train", "/v1/match", "/v1/identify"):
        assert "post" in paths[path]
    assert "requestBody" in paths["/v1/identify"]["post"]
    assert client.get("/docs").status_code == 200


def test_one_json_log_line_per_request_without_secrets_or_images(
    client: TestClient, tenants: Tenants, faces: Faces, caplog: pytest.LogCaptureFixture
) -> None:
    image = faces.b64(faces.alice)
    with caplog.at_level(logging.INFO, logger="facegate.request"):
        response = client.post(
            "/v1/facedetect",
            json={"img": image},
            headers={**tenants.alice, "x-request-id": "abc-123"},
        )
    assert response.headers["x-request-id"] == "abc-123"
    records = [r for r in caplog.records if r.name == "facegate.request"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    entry = json.loads(line)
    assert entry["route"] == "/v1/facedetect" and entry["status"] == 200
    assert entry["request_id"] == "abc-123" and entry["key_id"]
    assert tenants.alice["x-api-key"] not in line and image[:40] not in line


def test_a_refusals_log_line_names_its_error_code(
    app: FastAPI,
    client: TestClient,
    tenants: Tenants,
    faces: Faces,
    services: Services,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(services.collections, "list", broken)
    with caplog.at_level(logging.INFO, logger="facegate.request"):
        client.post("/v1/facedetect", json={"img": faces.b64(faces.alice)}, headers=tenants.alice)
        client.post("/v1/spdetect", json={"img": faces.b64(faces.nobody)}, headers=tenants.alice)
        client.get("/v1/collection")
        client.get("/v1/collection", headers={**tenants.alice, "accept": "text/html"})
        client.get("/v1/nothing", headers=tenants.alice)
        with TestClient(app, raise_server_exceptions=False) as quiet:
            assert quiet.get("/v1/collection", headers=tenants.alice).status_code == 500
    entries = [
        json.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "facegate.request"
    ]
    assert [(e["status"], e.get("error")) for e in entries] == [
        (200, None),  # no error field on a success
        (422, "no_face_found"),
        (401, "unauthorized"),
        (406, "not_acceptable"),  # refused by the guard, before any route
        (404, "not_found"),
        (500, "internal_error"),
    ]


def test_accept_header_parsing() -> None:
    assert accepts_json(None) and accepts_json("") and accepts_json("application/json")
    assert accepts_json("text/html, application/*;q=0.5")
    assert not accepts_json("text/html")
    assert not accepts_json("application/json;q=0")
    assert not accepts_json("*/*;q=1, application/json;q=0")


def test_body_limits_fit_the_endpoint() -> None:
    settings = Settings(max_image_bytes=1000, max_images_per_enrollment=10)
    assert body_limit(settings, "/v1/facedetect", "image/jpeg") == 1000
    base64_image = 1336  # 1000 bytes in base64
    single = body_limit(settings, "/v1/match", "application/json")
    several = body_limit(settings, "/v1/enroll", "application/json")
    assert base64_image <= single and 10 * base64_image <= several
    assert several - single == 9 * base64_image
    # Collections and training take names and ids only: no room for an image.
    assert body_limit(settings, "/v1/collection", "application/json") == single - base64_image
    assert body_limit(settings, "/v1/train/", None) == 64 * 1024
    assert body_limit(settings.model_copy(update={"max_request_bytes": 5}), "/v1/enroll", None) == 5
