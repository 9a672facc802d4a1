"""Hardening (issue 12): hostile headers, bodies and paths each get a clean 4xx in the envelope
and leave the store unchanged; 503s carry Retry-After; 413s name the setting; metrics labels
stay bounded; SQLite deletes leave nothing on disk."""

from __future__ import annotations

import asyncio
import json
import stat
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from facegate.api.app import create_app
from facegate.api.jsonlimits import MAX_DEPTH, MAX_VALUES, loads_limited
from facegate.api.metrics import Metrics
from facegate.api.middleware import _guarded
from facegate.config import Settings
from facegate.errors import BadRequest, ImageTooLarge, RequestTimeout
from facegate.service.container import Services
from facegate.store.db import Database
from facegate.store.models import Collection, Embedding, Enrollment

if TYPE_CHECKING:
    from starlette.types import Message

    from tests.unit.conftest import Faces, FakeEngine, Tenants


def _refused(response: Any, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {"data": None, "message": body["message"], "success": False}
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    message: str = body["message"]
    return message


def _rows(services: Services) -> tuple[int, int, int]:
    with services.database.reading() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Collection, Enrollment, Embedding)
        )


# Item 1: header bytes that are not ASCII. ------------------------------------------------------


def test_a_non_ascii_request_id_is_replaced_not_a_500(
    client: TestClient, services: Services, tenants: Tenants
) -> None:
    health = client.get("/healthz", headers={"x-request-id": b"\xe9"})  # type: ignore[dict-item]
    assert health.status_code == 200
    assert len(health.headers["x-request-id"]) == 32
    created = client.post(
        "/v1/collection",
        json={"name": "r"},
        headers={**tenants.alice, "x-request-id": b"\xe9\xff"},  # type: ignore[dict-item]
    )
    assert created.status_code == 200, created.text
    assert created.headers["x-request-id"] != "\xe9\xff"
    collection_id = created.json()["data"]["collection_id"]
    listed = client.get("/v1/collection", headers=tenants.alice).json()["data"]
    assert [c["id"] for c in listed] == [collection_id]  # the client learnt the id it made


@pytest.mark.parametrize(
    ("header", "status", "fragment"),
    [
        ("x-request-id", 400, "name: is required"),
        ("x-api-key", 401, "invalid"),
        ("accept", 406, "application/json"),
        ("content-type", 415, "not accepted"),
        ("content-length", 400, "Content-Length"),
    ],
)
def test_non_ascii_header_bytes_are_a_clean_4xx(
    client: TestClient,
    services: Services,
    tenants: Tenants,
    header: str,
    status: int,
    fragment: str,
) -> None:
    before = _rows(services)
    headers: dict[str, Any] = {**tenants.alice, "content-type": "application/json"}
    headers[header] = b"\xe9"
    body = b'{"unknowns": true}'
    # (h11 itself refuses a non-numeric Content-Length; straight through ASGI the guard does.)
    response = client.post("/v1/collection", content=body, headers=headers)
    _refused(response, status, fragment)
    assert _rows(services) == before


# Item 2: JSON that Python cannot hold, refused when parsed. -------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        ("POST", "/v1/enroll", b"[" * 100_000 + b"]" * 100_000, "nested more than"),
        ("POST", "/v1/collection", b'{"name": "x", "unknowns": ' + b"7" * 4301 + b"}", "4301"),
        ("POST", "/v1/match", b'{"img": "", "id": "e", "threshold": ' + b"1" * 5000 + b"}", "5000"),
        ("POST", "/v1/collection", b'{"name": "x", "t": 0.' + b"1" * 5000 + b"}", "characters"),
        ("POST", "/v1/collection", b'{"name": "x", "pad": [' + b"{}," * 5000 + b"{}]}", "1000"),
        ("POST", "/v1/collection", b'{"name": "x", "pad": [' + b"0," * 5000 + b"0]}", "values"),
    ],
    ids=["deep", "long int", "long threshold", "long float", "padded objects", "padded numbers"],
)
def test_json_over_the_parse_limits_is_400(
    client: TestClient,
    services: Services,
    tenants: Tenants,
    method: str,
    path: str,
    body: bytes,
    fragment: str,
) -> None:
    before = _rows(services)
    response = client.request(
        method, path, content=body, headers={**tenants.alice, "content-type": "application/json"}
    )
    _refused(response, 400, fragment)
    assert _rows(services) == before


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_an_image_field_with_a_huge_number_is_400(
    client: TestClient, services: Services, tenants: Tenants, faces: Faces, method: str
) -> None:
    enrolled = client.post(
        "/v1/enroll", json={"img0": faces.b64(faces.alice)}, headers=tenants.alice
    )
    enrollment_id = enrolled.json()["data"]["enrollment_id"]
    before = _rows(services)
    body = {"img" + "1" * 5000: faces.b64(faces.bob), "enrollment_id": enrollment_id}
    response = client.request(method, "/v1/enroll", json=body, headers=tenants.alice)
    _refused(response, 400, "image fields are named img0")
    assert _rows(services) == before


def test_the_limited_parse_accepts_what_the_api_needs() -> None:
    body = {"img0": "QUJD" * 1000, "name": 'Zoë "\\" [{', "threshold": 0.45, "unknowns": True}
    assert loads_limited(json.dumps(body).encode()) == body
    nested: Any = [1]
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert loads_limited(json.dumps(nested).encode()) == nested
    assert loads_limited(json.dumps(list(range(MAX_VALUES))).encode()) == list(range(MAX_VALUES))
    with pytest.raises(BadRequest, match="nested"):
        loads_limited(json.dumps([nested]).encode())
    with pytest.raises(BadRequest, match="not valid JSON"):
        loads_limited(b'{"a": "unterminated \\"')
    with pytest.raises(BadRequest, match="not valid JSON"):
        loads_limited(b'{"a": "\xff"}')


# Item 4: a padded enroll body costs nothing but its bytes. --------------------------------------


def test_a_padded_enroll_body_is_refused_before_any_image_work(
    client: TestClient, services: Services, tenants: Tenants, faces: Faces, engine: FakeEngine
) -> None:
    before = _rows(services)
    image = json.dumps(faces.b64(faces.alice)).encode()
    body = b'{"img0": ' + image + b', "pad": [' + b"{}," * 1_000_000 + b"{}]}"
    response = client.post(
        "/v1/enroll", content=body, headers={**tenants.alice, "content-type": "application/json"}
    )
    _refused(response, 400, "JSON values")
    assert engine.embedded_faces == 0
    assert _rows(services) == before


# Item 5: the body must arrive in time. ----------------------------------------------------------


def test_a_body_that_does_not_arrive_in_time_is_408() -> None:
    async def scenario() -> None:
        async def trickle() -> Message:
            await asyncio.sleep(0.02)
            return {"type": "http.request", "body": b"x", "more_body": True}

        loop = asyncio.get_running_loop()
        receive = _guarded(trickle, 10**9, "FACEGATE_MAX_REQUEST_BYTES", loop.time() + 0.2, 0.2)
        with pytest.raises(RequestTimeout, match="FACEGATE_BODY_TIMEOUT_S"):
            for _ in range(100):
                await receive()

        async def whole() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        receive = _guarded(whole, 10, "FACEGATE_MAX_REQUEST_BYTES", loop.time() - 1, 0.2)
        # Past the deadline a complete body still arrives: the bound is on waiting, not on work.
        assert (await receive())["body"] == b"{}"

    asyncio.run(scenario())


# Item 6: bounded metric labels. ------------------------------------------------------------------


def test_metric_labels_are_bounded(client: TestClient) -> None:
    for index in range(30):
        client.request(f"BREW{index}", "/v1/collection")
        client.get(f"/no/such/path/{index}")
    text_metrics = client.get("/metrics").text
    assert "BREW" not in text_metrics and "/no/such" not in text_metrics
    assert 'method="other",route="/v1/collection"' in text_metrics
    assert 'method="GET",route="unmatched",status="404"' in text_metrics
    metrics = Metrics(lambda: 0.0)
    metrics.observe("DELETE", "/v1/enroll", 200, 0.1)
    assert 'method="DELETE"' in metrics.render().decode()


# Item 7: Retry-After on every 503; no redirect on a trailing slash. -----------------------------


def test_every_503_says_when_to_retry(settings: Settings, engine: FakeEngine, faces: Faces) -> None:
    app = create_app(settings, engine)
    services: Services = app.state.services
    alice = {"x-api-key": services.keys.create("alice").secret}
    with TestClient(app) as client:
        engine.loaded = False
        not_ready = client.get("/readyz")
        _refused(not_ready, 503, "not ready")
        assert int(not_ready.headers["retry-after"]) >= 1
        engine.loaded = True
        services.inference.close()  # shutting down
        response = client.post("/v1/facedetect", content=faces.png(faces.alice), headers=alice)
        _refused(response, 503, "shutting down")
        assert int(response.headers["retry-after"]) >= 1


def test_overload_503_has_retry_after(settings: Settings, engine: FakeEngine, faces: Faces) -> None:
    app = create_app(settings.model_copy(update={"inference_queue_limit": 0}), engine)
    services: Services = app.state.services
    alice = {"x-api-key": services.keys.create("alice").secret}
    services.inference._admitted = services.inference.workers  # every worker busy
    with TestClient(app) as client:
        response = client.post("/v1/facedetect", content=faces.png(faces.alice), headers=alice)
    _refused(response, 503, "overloaded")
    assert int(response.headers["retry-after"]) >= 1


def test_a_trailing_slash_is_the_same_route_not_a_redirect(
    client: TestClient, services: Services, tenants: Tenants
) -> None:
    headers = {**tenants.alice, "host": "evil.example"}
    created = client.post("/v1/collection/", json={"name": "slash"}, headers=headers)
    assert created.status_code == 200, created.text
    listed = client.get("/v1/collection/", headers=headers, follow_redirects=False)
    assert listed.status_code == 200 and "location" not in listed.headers
    assert [c["name"] for c in listed.json()["data"]] == ["slash"]
    missing = client.get("/v1/nothing/", headers=headers, follow_redirects=False)
    _refused(missing, 404, "no such endpoint")
    assert "location" not in missing.headers
    assert client.get("/healthz/").status_code == 200


# Item 10: a 413 says the limit and the setting that raises it. ---------------------------------


def test_413_names_the_limit_and_the_setting(
    client: TestClient, tenants: Tenants, settings: Settings
) -> None:
    limit = settings.max_image_bytes
    raw = client.post(
        "/v1/facedetect",
        content=b"\xff\xd8" + b"\0" * limit,
        headers={**tenants.alice, "content-type": "image/jpeg"},
    )
    _refused(raw, 413, str(limit), "FACEGATE_MAX_IMAGE_BYTES")
    assert raw.headers["connection"] == "close"
    body = client.post(
        "/v1/identify",
        json={"img": "A" * (8 * limit), "collection_id": "c"},
        headers=tenants.alice,
    )
    _refused(body, 413, "limit here is", "FACEGATE_MAX_REQUEST_BYTES")
    image = client.post("/v1/enroll", json={"img0": "A" * (2 * limit)}, headers=tenants.alice)
    _refused(image, 413, f"limit is {limit} bytes", "FACEGATE_MAX_IMAGE_BYTES")
    once = ImageTooLarge("over FACEGATE_MAX_IMAGE_BYTES")
    assert once.message.count("FACEGATE_MAX_IMAGE_BYTES") == 1
    # Refused before routing, still counted under the route (not "unmatched").
    text_metrics = client.get("/metrics").text
    assert 'route="/v1/facedetect",status="413"' in text_metrics


# Item 8: deletion gone from disk. ---------------------------------------------------------------


def test_sqlite_files_are_private_and_deletes_are_checkpointed(
    tmp_path_factory: pytest.TempPathFactory, engine: FakeEngine, faces: Faces
) -> None:
    data_dir = tmp_path_factory.mktemp("private") / "data"
    settings = Settings(data_dir=data_dir, warm_up_on_start=False, max_concurrent_inference=1)
    app = create_app(settings, engine)
    services: Services = app.state.services
    alice = {"x-api-key": services.keys.create("alice").secret}
    database = services.database
    with database.reading() as session:
        assert session.execute(text("PRAGMA secure_delete")).scalar() == 1
    with TestClient(app) as client:
        enrolled = client.post("/v1/enroll", json={"img0": faces.b64(faces.carol)}, headers=alice)
        enrollment_id = enrolled.json()["data"]["enrollment_id"]
        with database.reading() as session:
            vector = session.scalar(select(Embedding.vector))
        assert vector is not None
        deleted = client.request(
            "DELETE", "/v1/enroll", json={"enrollment_id": enrollment_id}, headers=alice
        )
        assert deleted.status_code == 200
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        files = sorted(p for p in data_dir.iterdir() if p.name.startswith("facegate.db"))
        assert {p.name for p in files} >= {"facegate.db", "facegate.db-wal"}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert vector not in path.read_bytes(), f"the deleted embedding is still in {path}"
        assert (data_dir / "facegate.db-wal").stat().st_size == 0


def test_existing_world_readable_files_are_tightened(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data_dir = tmp_path_factory.mktemp("old")
    old = data_dir / "facegate.db"
    old.touch(mode=0o644)
    old.chmod(0o644)
    Database.from_settings(Settings(data_dir=data_dir)).dispose()
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_after_delete_is_a_no_op_off_sqlite() -> None:
    class NotSqlite(Database):
        def __init__(self) -> None:
            pass

    database = NotSqlite()
    database.engine = type("E", (), {"dialect": type("D", (), {"name": "postgresql"})()})()  # type: ignore[assignment]
    database.after_delete()  # nothing to connect to, nothing done
