"""Refusals: every one a 4xx (or 503) in the envelope with a message that says what to fix."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facegate.api.app import create_app
from facegate.config import Settings
from facegate.service.container import Services
from facegate.store.models import Embedding, Enrollment

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine, Tenants


def _refused(response: Any, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["data"] is None and body["success"] is False
    message: str = body["message"]
    for fragment in fragments:
        assert fragment in message, message
    return message


def _rows(services: Services) -> tuple[int, int]:
    with services.database.reading() as session:
        return (
            int(session.scalar(select(func.count()).select_from(Enrollment)) or 0),
            int(session.scalar(select(func.count()).select_from(Embedding)) or 0),
        )


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing API key"),
        ({"x-api-key": "nope"}, "invalid"),
        ({"x-api-key": "fg_0123456789abcdef_guess"}, "invalid"),
    ],
)
def test_missing_or_wrong_key_is_401(
    client: TestClient, tenants: Tenants, headers: dict[str, str], fragment: str
) -> None:
    _refused(client.get("/v1/collection", headers=headers), 401, fragment)


def test_revoked_key_is_401(client: TestClient, services: Services) -> None:
    created = services.keys.create("temporary")
    headers = {"x-api-key": created.secret}
    assert client.get("/v1/collection", headers=headers).status_code == 200
    services.keys.revoke(created.key_id)
    _refused(client.get("/v1/collection", headers=headers), 401, "revoked")


def test_unknown_route_404_and_wrong_method_405_with_allow(
    client: TestClient, tenants: Tenants
) -> None:
    _refused(client.get("/v1/nothing", headers=tenants.alice), 404, "no such endpoint")
    response = client.get("/v1/train", headers=tenants.alice)
    _refused(response, 405, "GET is not allowed")
    assert response.headers["allow"] == "POST"
    response = client.patch("/v1/enroll", headers=tenants.alice)
    _refused(response, 405, "PATCH is not allowed")
    assert response.headers["allow"] == "DELETE, GET, POST, PUT"
    _refused(client.patch("/v1/collection", headers=tenants.alice), 405, "DELETE, GET, POST, PUT")


def test_accept_without_json_is_406(client: TestClient, tenants: Tenants) -> None:
    _refused(
        client.get("/v1/collection", headers={**tenants.alice, "accept": "text/html"}),
        406,
        "application/json",
    )
    _refused(
        client.get(
            "/v1/collection", headers={**tenants.alice, "accept": "application/json;q=0, */*"}
        ),
        406,
    )
    for accept in ("application/json", "*/*", "application/*", "text/html, */*;q=0.1"):
        ok = client.get("/v1/collection", headers={**tenants.alice, "accept": accept})
        assert ok.status_code == 200, accept


def test_oversized_bodies_are_413_before_reading(
    client: TestClient, tenants: Tenants, settings: Settings, engine: FakeEngine
) -> None:
    raw = client.post(
        "/v1/facedetect",
        content=b"\xff" * (settings.max_image_bytes + 1),
        headers={**tenants.alice, "content-type": "image/jpeg"},
    )
    _refused(raw, 413, str(settings.max_image_bytes))

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * (settings.max_image_bytes // 10)

    streamed = client.post(
        "/v1/match", content=chunks(), headers={**tenants.alice, "content-type": "application/json"}
    )
    _refused(streamed, 413, "limit")
    assert engine.embedded_faces == 0


def test_oversized_base64_image_is_413_naming_the_field(
    client: TestClient, tenants: Tenants, settings: Settings
) -> None:
    big = "A" * ((settings.max_image_bytes // 3 + 10) * 4)
    _refused(
        client.post("/v1/enroll", json={"img0": "iVBO", "img1": big}, headers=tenants.alice),
        413,
        "img1",
    )


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/enroll", "application/x-www-form-urlencoded"),
        ("/v1/collection", "text/plain"),
        ("/v1/facedetect", "text/plain"),
        ("/v1/identify", "image/jpeg"),
    ],
)
def test_wrong_content_type_is_415(
    client: TestClient, tenants: Tenants, path: str, content_type: str
) -> None:
    response = client.post(
        path, content=b'{"name": "x"}', headers={**tenants.alice, "content-type": content_type}
    )
    _refused(response, 415, content_type)


def test_json_without_content_type_is_accepted_as_the_seed_examples_send_it(
    client: TestClient, tenants: Tenants
) -> None:
    response = client.post(
        "/v1/collection", content=b'{"name": "no header"}', headers=tenants.alice
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (b"", ("empty",)),
        (b"{not json", ("not valid JSON",)),
        (b"[1, 2]", ("JSON object",)),
        (b'{"unknowns": true}', ("name: is required",)),
        (b'{"name": 5}', ("name:",)),
        (b'{"name": ""}', ("name:",)),
        (b'{"name": "x", "unknowns": "maybe"}', ("unknowns: must be true or false",)),
    ],
)
def test_bad_collection_bodies_are_400(
    client: TestClient, tenants: Tenants, body: bytes, fragments: tuple[str, ...]
) -> None:
    response = client.post(
        "/v1/collection",
        content=body,
        headers={**tenants.alice, "content-type": "application/json"},
    )
    _refused(response, 400, *fragments)
    assert client.get("/v1/collection", headers=tenants.alice).json()["data"] == []


@pytest.mark.parametrize(
    ("threshold", "fragment"),
    [
        (1.5, "less than or equal to 1"),
        (-0.1, "greater than or equal to 0"),
        ("abc", "number"),
        (True, "number"),
        ("nan", "finite"),
        ([0.5], "number"),
    ],
)
def test_match_threshold_must_be_a_number_in_0_1(
    client: TestClient, tenants: Tenants, faces: Faces, threshold: object, fragment: str
) -> None:
    response = client.post(
        "/v1/match",
        json={"img": faces.b64(faces.alice), "id": "x", "threshold": threshold},
        headers=tenants.alice,
    )
    _refused(response, 400, "threshold", fragment)


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"img": "not base64!!", "collection_id": "c"}, 400, "img: invalid base64"),
        ({"img": 12, "collection_id": "c"}, 400, "img"),
        ({"img": "aGVsbG8gd29ybGQ=", "collection_id": "c"}, 404, "no collection"),
        ({"collection_id": "c"}, 400, "img: is required"),
        ({"img": "aGk=", "collection_id": ["c"]}, 400, "collection_id"),
        ({"img": "aGk=", "collection_id": "c", "top_k": 0}, 400, "top_k"),
        ({"img": "aGk=", "collection_id": "c", "top_k": 1000}, 400, "top_k: at most"),
        ({"img": "aGk=", "collection_id": "c", "all_faces": "sometimes"}, 400, "all_faces"),
    ],
)
def test_bad_identify_bodies(
    client: TestClient, tenants: Tenants, body: dict[str, Any], status: int, fragment: str
) -> None:
    _refused(client.post("/v1/identify", json=body, headers=tenants.alice), status, fragment)


def test_eleven_images_are_refused_before_any_inference(
    client: TestClient, tenants: Tenants, faces: Faces, engine: FakeEngine, services: Services
) -> None:
    body = {f"img{i}": faces.b64(faces.alice) for i in range(11)}
    _refused(client.post("/v1/enroll", json=body, headers=tenants.alice), 400, "at most 10")
    _refused(client.post("/v1/enroll", json={"name": "x"}, headers=tenants.alice), 400, "no image")
    assert engine.embedded_faces == 0
    assert _rows(services) == (0, 0)


@pytest.mark.parametrize(
    ("second", "status", "fragment"),
    [
        ("nobody", 422, "img1: no face found"),
        ("tiny", 422, "img1: face too small"),
        ("garbage", 400, "img1:"),
        ("truncated", 400, "img1:"),
    ],
)
def test_one_bad_image_stores_nothing(
    client: TestClient,
    tenants: Tenants,
    faces: Faces,
    services: Services,
    second: str,
    status: int,
    fragment: str,
) -> None:
    good = faces.png(faces.alice)
    second_image = {
        "nobody": faces.png(faces.nobody),
        "tiny": faces.png(faces.alice, size=32),
        "garbage": b"this is not an image at all",
        "truncated": good[: len(good) // 2],
    }[second]
    body = {
        "img0": faces.b64(faces.alice),
        "img1": base64.b64encode(second_image).decode(),
        "img2": faces.b64(faces.alice),
    }
    _refused(client.post("/v1/enroll", json=body, headers=tenants.alice), status, fragment)
    assert _rows(services) == (0, 0)


def test_enroll_into_a_missing_collection_stores_nothing(
    client: TestClient, tenants: Tenants, faces: Faces, services: Services, engine: FakeEngine
) -> None:
    body = {"img0": faces.b64(faces.alice), "collection_id": "does-not-exist"}
    _refused(client.post("/v1/enroll", json=body, headers=tenants.alice), 404, "does-not-exist")
    assert _rows(services) == (0, 0)
    assert engine.embedded_faces == 0  # checked before the models ran


def test_names_are_stored_verbatim(client: TestClient, tenants: Tenants, faces: Faces) -> None:
    for name in ("Robert'); DROP TABLE enrollments;--", "Zoë 山田 🙂", "  spaced  "):
        created = client.post("/v1/collection", json={"name": name}, headers=tenants.alice)
        assert created.status_code == 200
    names = {c["name"] for c in client.get("/v1/collection", headers=tenants.alice).json()["data"]}
    assert "Robert'); DROP TABLE enrollments;--" in names and "Zoë 山田 🙂" in names


def test_rate_limit_is_429_with_retry_after(settings: Settings, engine: FakeEngine) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 2})
    app = create_app(limited, engine)
    services: Services = app.state.services
    headers = {"x-api-key": services.keys.create("busy").secret}
    other = {"x-api-key": services.keys.create("calm").secret}
    with TestClient(app) as client:
        assert [client.get("/v1/collection", headers=headers).status_code for _ in range(2)] == [
            200,
            200,
        ]
        response = client.get("/v1/collection", headers=headers)
        _refused(response, 429, "rate limit")
        assert int(response.headers["retry-after"]) >= 1
        assert client.get("/v1/collection", headers=other).status_code == 200  # per key


def test_a_bug_is_a_500_in_the_envelope(
    settings: Settings, engine: FakeEngine, faces: Faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(settings, engine)
    services: Services = app.state.services
    headers = {"x-api-key": services.keys.create("k").secret}

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(engine, "detect", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/facedetect", json={"img": faces.b64(faces.alice)}, headers=headers
        )
    message = _refused(response, 500, "internal error")
    assert "a bug" not in message


def test_503_while_shutting_down(
    client: TestClient, tenants: Tenants, faces: Faces, services: Services
) -> None:
    services.inference.close()
    response = client.post(
        "/v1/facedetect", json={"img": faces.b64(faces.alice)}, headers=tenants.alice
    )
    _refused(response, 503, "shutting down")


def test_too_many_pixels_is_413_with_the_limit(
    settings: Settings, engine: FakeEngine, faces: Faces
) -> None:
    small = settings.model_copy(update={"max_image_pixels": 5000})
    engine.settings = small
    app = create_app(small, engine)
    services: Services = app.state.services
    headers = {"x-api-key": services.keys.create("k").secret}
    with TestClient(app) as client:
        response = client.post("/v1/enroll", json={"img0": faces.b64(faces.alice)}, headers=headers)
    _refused(response, 413, "img0:", "5000 pixels")
