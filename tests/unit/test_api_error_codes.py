"""Every refusal names its stable error code in ``x-facegate-error``; the envelope is unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from facegate.api.app import create_app
from facegate.config import Settings
from facegate.service.container import Services

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine, Tenants


def _code(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"data", "message", "success"}
    code: str = response.headers["x-facegate-error"]
    return code


def test_codes_of_framework_and_guard_refusals(client: TestClient, tenants: Tenants) -> None:
    assert _code(client.get("/v1/collection"), 401) == "unauthorized"
    assert _code(client.get("/v1/nowhere", headers=tenants.alice), 404) == "not_found"
    assert _code(client.get("/v1/train", headers=tenants.alice), 405) == "method_not_allowed"
    accept = {**tenants.alice, "accept": "text/html"}
    assert _code(client.get("/v1/collection", headers=accept), 406) == "not_acceptable"
    form = {**tenants.alice, "content-type": "text/plain"}
    assert _code(client.post("/v1/collection", content="x", headers=form), 415) == (
        "unsupported_media_type"
    )


def test_codes_of_service_refusals(client: TestClient, tenants: Tenants, faces: Faces) -> None:
    headers = tenants.alice
    assert _code(client.post("/v1/collection", json={}, headers=headers), 400) == "bad_request"
    bad_image = client.post("/v1/enroll", json={"img0": "aGk="}, headers=headers)
    assert _code(bad_image, 400) == "invalid_image"
    nobody = client.post("/v1/enroll", json={"img0": faces.b64(faces.nobody)}, headers=headers)
    assert _code(nobody, 422) == "no_face_found"
    tiny = client.post(
        "/v1/enroll", json={"img0": faces.b64(faces.alice, size=40)}, headers=headers
    )
    assert _code(tiny, 422) == "poor_quality_face"
    eleven = {f"img{i}": "x" for i in range(11)}
    assert _code(client.post("/v1/enroll", json=eleven, headers=headers), 400) == "too_many_images"
    missing = client.post("/v1/train", json={"collection_id": "nope"}, headers=headers)
    assert _code(missing, 404) == "not_found"
    collection_id = client.post("/v1/collection", json={"name": "c"}, headers=headers).json()[
        "data"
    ]["collection_id"]
    untrained = client.post(
        "/v1/identify",
        json={"collection_id": collection_id, "img": faces.b64(faces.alice)},
        headers=headers,
    )
    assert _code(untrained, 409) == "not_trained"


def test_successful_answers_carry_no_code(client: TestClient, tenants: Tenants) -> None:
    response = client.get("/v1/collection", headers=tenants.alice)
    assert response.status_code == 200 and "x-facegate-error" not in response.headers


def test_rate_limit_and_bug_codes(
    settings: Settings, engine: FakeEngine, faces: Faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 1}), engine)
    services: Services = app.state.services
    headers = {"x-api-key": services.keys.create("k").secret}

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(engine, "detect", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = {"img": faces.b64(faces.alice)}
        assert _code(client.post("/v1/facedetect", json=body, headers=headers), 500) == (
            "internal_error"
        )
        limited = client.post("/v1/facedetect", json=body, headers=headers)
        assert _code(limited, 429) == "rate_limited"
        assert "retry-after" in limited.headers
