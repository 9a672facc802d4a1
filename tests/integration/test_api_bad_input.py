"""Bad input over every endpoint of the live server: each a clear 4xx in the envelope, never a
500, and the store exactly as it was (every row of every table compared before and after)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveServer, Photos

pytestmark = pytest.mark.integration

ENDPOINTS = [
    ("POST", "/spdetect"),
    ("POST", "/facedetect"),
    ("POST", "/enroll"),
    ("PUT", "/enroll"),
    ("DELETE", "/enroll"),
    ("POST", "/collection"),
    ("PUT", "/collection"),
    ("DELETE", "/collection"),
    ("GET", "/collection"),
    ("POST", "/train"),
    ("POST", "/match"),
    ("POST", "/identify"),
]
IMAGE_ENDPOINTS = {"/spdetect", "/facedetect"}


@dataclass(frozen=True)
class Targets:
    """Alice's data, which Bob must not reach and nobody's bad request may change."""

    enrollment: str
    collection: str
    grace: str  # base64 of a good face photo


@pytest.fixture(scope="module")
def targets(live: LiveServer, photos: type[Photos]) -> Targets:
    alice = live.client("alice")
    collection = alice.post("/collection", json={"name": "guarded"}).json()["data"]["collection_id"]
    grace = photos.b64(photos.grace(0))
    enrolled = alice.post(
        "/enroll", json={"img0": grace, "name": "Grace", "collection_id": collection}
    )
    assert enrolled.status_code == 200, enrolled.text
    alice.post("/train", json={"collection_id": collection})
    live.wait_for_training()
    return Targets(enrolled.json()["data"]["enrollment_id"], collection, grace)


Body = Callable[[Targets, type[Photos]], Any]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    fragment: str
    body: Body | None = None  # JSON value, or bytes for a raw body
    content_type: str | None = "application/json"
    key: str | None = "alice"
    headers: tuple[tuple[str, str], ...] = ()


def _valid_body(path: str) -> Body:
    """A body that would succeed on the endpoint, so that only the key is wrong."""

    def body(t: Targets, _p: type[Photos]) -> Any:
        return {
            "/spdetect": {"img": t.grace},
            "/facedetect": {"img": t.grace},
            "/enroll": {"img0": t.grace, "enrollment_id": t.enrollment},
            "/collection": {
                "name": "x",
                "collection_id": t.collection,
                "enrollment_id": t.enrollment,
            },
            "/train": {"collection_id": t.collection},
            "/match": {"img": t.grace, "id": t.enrollment},
            "/identify": {"img": t.grace, "collection_id": t.collection},
        }[path]

    return body


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _cases() -> list[Case]:
    cases: list[Case] = []
    for method, path in ENDPOINTS:
        body = None if method == "GET" else _valid_body(path)
        cases += [
            Case(f"no key {method} {path}", method, path, 401, "missing API key", body, key=None),
            Case(f"wrong key {method} {path}", method, path, 401, "invalid", body, key="fg_x_y"),
            Case(f"revoked key {method} {path}", method, path, 401, "revoked", body, key="revoked"),
        ]
        if method != "GET":
            empty_status = 400
            cases.append(
                Case(
                    f"empty body {method} {path}",
                    method,
                    path,
                    empty_status,
                    "empty",
                    lambda t, p: b"",
                )
            )
            cases.append(
                Case(
                    f"not JSON {method} {path}",
                    method,
                    path,
                    400,
                    "not valid JSON",
                    lambda t, p: b"{oops",
                )
            )
            cases.append(
                Case(
                    f"wrong content type {method} {path}",
                    method,
                    path,
                    415,
                    "text/plain",
                    lambda t, p: b"hello",
                    content_type="text/plain",
                )
            )
    other = "bob"
    cases += [
        # Another tenant's ids are simply not there for Bob.
        Case(
            "other tenant identify",
            "POST",
            "/identify",
            404,
            "no collection",
            _valid_body("/identify"),
            key=other,
        ),
        Case(
            "other tenant match",
            "POST",
            "/match",
            404,
            "no enrollment",
            _valid_body("/match"),
            key=other,
        ),
        Case(
            "other tenant update enrollment",
            "PUT",
            "/enroll",
            404,
            "no enrollment",
            lambda t, p: {"enrollment_id": t.enrollment, "img0": t.grace},
            key=other,
        ),
        Case(
            "other tenant delete enrollment",
            "DELETE",
            "/enroll",
            404,
            "no enrollment",
            lambda t, p: {"enrollment_id": t.enrollment},
            key=other,
        ),
        Case(
            "other tenant delete collection",
            "DELETE",
            "/collection",
            404,
            "no collection",
            lambda t, p: {"collection_id": t.collection},
            key=other,
        ),
        Case(
            "other tenant train",
            "POST",
            "/train",
            404,
            "no collection",
            lambda t, p: {"collection_id": t.collection},
            key=other,
        ),
        Case(
            "other tenant update collection",
            "PUT",
            "/collection",
            404,
            "no collection",
            lambda t, p: {"collection_id": t.collection, "enrollment_id": t.enrollment},
            key=other,
        ),
        Case(
            "other tenant enroll into collection",
            "POST",
            "/enroll",
            404,
            "no collection",
            lambda t, p: {"img0": t.grace, "collection_id": t.collection},
            key=other,
        ),
        # Missing fields.
        Case(
            "enroll without images", "POST", "/enroll", 400, "no image", lambda t, p: {"name": "x"}
        ),
        Case(
            "update enrollment without id",
            "PUT",
            "/enroll",
            400,
            "enrollment_id: is required",
            lambda t, p: {"img0": t.grace},
        ),
        Case(
            "delete enrollment without id",
            "DELETE",
            "/enroll",
            400,
            "enrollment_id",
            lambda t, p: {},
        ),
        Case(
            "collection without name",
            "POST",
            "/collection",
            400,
            "name: is required",
            lambda t, p: {"unknowns": True},
        ),
        Case(
            "update collection without enrollment",
            "PUT",
            "/collection",
            400,
            "enrollment_id",
            lambda t, p: {"collection_id": t.collection},
        ),
        Case(
            "delete collection without id",
            "DELETE",
            "/collection",
            400,
            "collection_id",
            lambda t, p: {},
        ),
        Case("train without id", "POST", "/train", 400, "collection_id", lambda t, p: {}),
        Case(
            "match without id",
            "POST",
            "/match",
            400,
            "id: is required",
            lambda t, p: {"img": t.grace},
        ),
        Case(
            "identify without image",
            "POST",
            "/identify",
            400,
            "img: is required",
            lambda t, p: {"collection_id": t.collection},
        ),
        Case(
            "facedetect JSON without image",
            "POST",
            "/facedetect",
            400,
            "img: is required",
            lambda t, p: {"image": t.grace},
        ),
        Case(
            "spdetect JSON without image",
            "POST",
            "/spdetect",
            400,
            "img: is required",
            lambda t, p: {},
        ),
        # Wrongly typed fields.
        Case("image as a number", "POST", "/enroll", 400, "img0", lambda t, p: {"img0": 5}),
        Case(
            "name as a number",
            "POST",
            "/enroll",
            400,
            "name",
            lambda t, p: {"img0": t.grace, "name": 5},
        ),
        Case(
            "collection id as a list",
            "POST",
            "/identify",
            400,
            "collection_id",
            lambda t, p: {"img": t.grace, "collection_id": [t.collection]},
        ),
        Case(
            "enrollment id as an object",
            "PUT",
            "/collection",
            400,
            "enrollment_id",
            lambda t, p: {"collection_id": t.collection, "enrollment_id": {"id": 1}},
        ),
        Case(
            "threshold as a word",
            "POST",
            "/match",
            400,
            "threshold",
            lambda t, p: {"img": t.grace, "id": t.enrollment, "threshold": "high"},
        ),
        Case(
            "threshold above one",
            "POST",
            "/match",
            400,
            "threshold",
            lambda t, p: {"img": t.grace, "id": t.enrollment, "threshold": 2},
        ),
        Case(
            "unknowns as a word",
            "POST",
            "/collection",
            400,
            "unknowns",
            lambda t, p: {"name": "x", "unknowns": "perhaps"},
        ),
        Case(
            "top_k as a word",
            "POST",
            "/identify",
            400,
            "top_k",
            lambda t, p: {"img": t.grace, "collection_id": t.collection, "top_k": "many"},
        ),
        Case("body is a list", "POST", "/collection", 400, "JSON object", lambda t, p: [1, 2]),
        # Image content.
        Case(
            "invalid base64 enroll",
            "POST",
            "/enroll",
            400,
            "img0: invalid base64",
            lambda t, p: {"img0": "%%%not base64%%%"},
        ),
        Case(
            "invalid base64 match",
            "POST",
            "/match",
            400,
            "img: invalid base64",
            lambda t, p: {"img": "***", "id": t.enrollment},
        ),
        Case(
            "invalid base64 identify",
            "POST",
            "/identify",
            400,
            "img: invalid base64",
            lambda t, p: {"img": "a b c $", "collection_id": t.collection},
        ),
        Case(
            "invalid base64 facedetect",
            "POST",
            "/facedetect",
            400,
            "img: invalid base64",
            lambda t, p: {"img": "@@@@"},
        ),
        Case(
            "invalid base64 spdetect",
            "POST",
            "/spdetect",
            400,
            "img: invalid base64",
            lambda t, p: {"img": "@@@@"},
        ),
        Case(
            "text instead of an image enroll",
            "POST",
            "/enroll",
            400,
            "img0: the data is not",
            lambda t, p: {"img0": _b64(b"just some text, no image here")},
        ),
        Case(
            "text instead of an image match",
            "POST",
            "/match",
            400,
            "img: the data is not",
            lambda t, p: {"img": _b64(b"plain text"), "id": t.enrollment},
        ),
        Case(
            "text instead of an image facedetect",
            "POST",
            "/facedetect",
            400,
            "not a JPEG",
            lambda t, p: b"plain text bytes",
            content_type="image/jpeg",
        ),
        Case(
            "text instead of an image spdetect",
            "POST",
            "/spdetect",
            400,
            "not a JPEG",
            lambda t, p: b"plain text bytes",
            content_type="image/png",
        ),
        Case(
            "truncated JPEG facedetect",
            "POST",
            "/facedetect",
            400,
            "truncated",
            lambda t, p: p.grace(0)[:2000],
            content_type="image/jpeg",
        ),
        Case(
            "truncated JPEG enroll",
            "POST",
            "/enroll",
            400,
            "img1: ",
            lambda t, p: {"img0": t.grace, "img1": _b64(p.grace(0)[:2000])},
        ),
        Case(
            "empty raw image",
            "POST",
            "/facedetect",
            400,
            "empty",
            lambda t, p: b"",
            content_type="image/jpeg",
        ),
        Case(
            "eleven images",
            "POST",
            "/enroll",
            400,
            "at most 10",
            lambda t, p: {f"img{i}": t.grace for i in range(11)},
        ),
        Case(
            "eleven images update",
            "PUT",
            "/enroll",
            400,
            "at most 10",
            lambda t, p: {"enrollment_id": t.enrollment} | {f"img{i}": t.grace for i in range(11)},
        ),
        Case(
            "oversized raw image",
            "POST",
            "/facedetect",
            413,
            "2097152",
            lambda t, p: b"\xff\xd8" + b"\0" * (2 * 1024 * 1024),
            content_type="image/jpeg",
        ),
        Case(
            "oversized base64 image",
            "POST",
            "/enroll",
            413,
            "img0",
            lambda t, p: {"img0": "A" * (3 * 1024 * 1024)},
        ),
        Case(
            "oversized body",
            "POST",
            "/identify",
            413,
            "limit",
            lambda t, p: {"img": "A" * (8 * 1024 * 1024), "collection_id": t.collection},
        ),
        # No usable face where one is required: 422, naming the image.
        Case(
            "no face enroll",
            "POST",
            "/enroll",
            422,
            "img1: no face found",
            lambda t, p: {"img0": t.grace, "img1": _b64(p.no_face())},
        ),
        Case(
            "no face match",
            "POST",
            "/match",
            422,
            "img: no face found",
            lambda t, p: {"img": _b64(p.no_face()), "id": t.enrollment},
        ),
        Case(
            "no face identify",
            "POST",
            "/identify",
            422,
            "img: no face found",
            lambda t, p: {"img": _b64(p.no_face()), "collection_id": t.collection},
        ),
        Case(
            "face turned away",
            "POST",
            "/enroll",
            422,
            "img0: face turned too far",
            lambda t, p: {"img0": _b64(p.member(2))},
        ),
        # Unknown ids, including SQL-looking and unicode ones.
        Case(
            "unknown enrollment match",
            "POST",
            "/match",
            404,
            "no enrollment",
            lambda t, p: {"img": t.grace, "id": "nope"},
        ),
        Case(
            "unknown collection identify",
            "POST",
            "/identify",
            404,
            "no collection",
            lambda t, p: {"img": t.grace, "collection_id": "nope"},
        ),
        Case(
            "SQL-looking enrollment id",
            "DELETE",
            "/enroll",
            404,
            "no enrollment",
            lambda t, p: {"enrollment_id": "' OR '1'='1'; DROP TABLE embeddings; --"},
        ),
        Case(
            "unicode collection id",
            "DELETE",
            "/collection",
            404,
            "no collection",
            lambda t, p: {"collection_id": "集合-🙂"},
        ),
        Case(
            "unknown enrollment into collection",
            "PUT",
            "/collection",
            404,
            "no enrollment",
            lambda t, p: {"collection_id": t.collection, "enrollment_id": "nope"},
        ),
        Case(
            "unknown collection train",
            "POST",
            "/train",
            404,
            "no collection",
            lambda t, p: {"collection_id": "nope"},
        ),
        Case(
            "overlong id",
            "POST",
            "/train",
            400,
            "at most 256 characters",
            lambda t, p: {"collection_id": "x" * 300},
        ),
        # Methods, paths and Accept.
        Case("GET enroll", "GET", "/enroll", 405, "allowed: DELETE, POST, PUT"),
        Case("GET identify", "GET", "/identify", 405, "allowed: POST"),
        Case("PATCH collection", "PATCH", "/collection", 405, "allowed: DELETE, GET, POST, PUT"),
        Case("DELETE train", "DELETE", "/train", 405, "allowed: POST"),
        Case("unknown path", "POST", "/verify", 404, "no such endpoint", _valid_body("/match")),
        Case(
            "Accept excludes JSON",
            "GET",
            "/collection",
            406,
            "application/json",
            headers=(("accept", "text/html"),),
        ),
        Case(
            "bad landmarks flag",
            "POST",
            "/facedetect?rawlandmarks=perhaps",
            400,
            "rawlandmarks",
            _valid_body("/facedetect"),
        ),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_refused_cleanly_and_nothing_changed(
    case: Case, live: LiveServer, photos: type[Photos], targets: Targets
) -> None:
    before = live.store_fingerprint()
    headers = dict(case.headers)
    if case.key is not None:
        headers["x-api-key"] = live.keys.get(case.key, case.key)
    content: bytes | None = None
    if case.body is not None:
        value = case.body(targets, photos)
        content = value if isinstance(value, bytes) else json.dumps(value).encode()
        if case.content_type is not None:
            headers["content-type"] = case.content_type
    response = httpx.request(
        case.method, f"{live.base_url}/v1{case.path}", content=content, headers=headers, timeout=120
    )
    assert response.status_code == case.status, response.text
    body = response.json()
    assert body["data"] is None and body["success"] is False
    assert case.fragment in body["message"], body["message"]
    if case.status == 405:
        assert response.headers["allow"]
    time.sleep(0.01)
    assert live.store_fingerprint() == before, "a refused request changed the store"


def test_sql_looking_and_unicode_names_are_stored_verbatim(
    live: LiveServer, targets: Targets
) -> None:
    alice = live.client("alice")
    names = ["Robert'); DROP TABLE collections;--", "Zoë Ångström 山田太郎 🙂", "\u202eevil"]
    created = [
        alice.post("/collection", json={"name": n}).json()["data"]["collection_id"] for n in names
    ]
    listed = {c["id"]: c["name"] for c in alice.get("/collection").json()["data"]}
    assert [listed[c] for c in created] == names
    enrolled = alice.post("/enroll", json={"img0": targets.grace, "name": names[1]})
    assert enrolled.status_code == 200
    enrollment = enrolled.json()["data"]["enrollment_id"]
    assert live.scalar("SELECT name FROM enrollments WHERE id = ?", enrollment) == names[1]
    for collection in created:
        alice.request("DELETE", "/collection", json={"collection_id": collection})
    alice.request("DELETE", "/enroll", json={"enrollment_id": enrollment})


def test_every_endpoint_is_covered(targets: Targets) -> None:
    covered = {(c.method, c.path.split("?")[0]) for c in CASES if c.status < 500}
    assert set(ENDPOINTS) <= covered
    assert isinstance(targets.enrollment, str)


def test_the_server_logged_no_secret_and_no_image(live: LiveServer, targets: Targets) -> None:
    log = live.log_text()
    for secret in live.keys.values():
        assert secret not in log
    assert targets.grace[:64] not in log
    assert '"level": "error"' not in log, "a request failed with an unhandled error"
