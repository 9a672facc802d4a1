"""facegate.client against httpx.MockTransport: requests on the wire, typed results, errors,
retries. The live-server tests (tests/integration/test_client_live.py) prove the same against
the real server."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

import facegate.errors as server_errors
from facegate.client import (
    APIError,
    AsyncClient,
    BadRequest,
    Client,
    Collection,
    FacegateClientError,
    InternalServerError,
    InvalidInput,
    NoFaceFound,
    NotFound,
    NoUsableFace,
    PoorQualityFace,
    ProtocolError,
    RateLimited,
    TransportError,
    Unavailable,
)
from facegate.client import _client as client_module
from facegate.client._core import RetryPolicy, retry_after
from facegate.client._errors import BY_CODE
from facegate.client._errors import APIError as BaseAPIError

Handler = Callable[[httpx.Request], httpx.Response]
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"


def ok(data: Any, message: str | None = "done") -> httpx.Response:
    return httpx.Response(200, json={"data": data, "message": message, "success": True})


def refused(status: int, message: str, code: str | None = None, **headers: str) -> httpx.Response:
    if code is not None:
        headers["x-facegate-error"] = code
    return httpx.Response(
        status, json={"data": None, "message": message, "success": False}, headers=headers
    )


class Recorder:
    """A MockTransport handler answering from a queue and keeping every request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self) -> Any:
        return json.loads(self.last.content)


def client_for(recorder: Handler, **kwargs: Any) -> Client:
    return Client(
        "http://fg.test", api_key="fg_key", transport=httpx.MockTransport(recorder), **kwargs
    )


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return slept


FACE = {
    "bounding_box": [10.0, 20.0, 110.0, 140.0, 0.999],
    "points": [30, 80, 55, 35, 75, 60, 61, 90, 110, 112],
    "quality": {
        "eye_distance_px": 50.0,
        "sharpness": 300.0,
        "yaw_deg": 1.5,
        "pitch_deg": -2.0,
        "face_size_px": 100.0,
    },
}


def test_detect_sends_raw_bytes_with_the_key_and_parses_faces() -> None:
    recorder = Recorder(ok({"faces": [FACE | {"landmarks": [[1, 2]] * 68}]}))
    with client_for(recorder) as fg:
        faces = fg.detect(JPEG, landmarks=True)
    request = recorder.last
    assert (request.method, request.url.path) == ("POST", "/v1/facedetect")
    assert request.url.params["rawlandmarks"] == "true"
    assert request.headers["x-api-key"] == "fg_key"
    assert request.headers["content-type"] == "image/jpeg"
    assert request.content == JPEG
    (face,) = faces
    assert face.box == (10.0, 20.0, 110.0, 140.0) and face.confidence == 0.999
    assert face.points[0] == (30.0, 60.0) and face.points[4] == (75.0, 112.0)
    assert face.landmarks is not None and len(face.landmarks) == 68
    assert face.quality is not None and face.quality.yaw_deg == 1.5


def test_detect_without_landmarks_sends_no_query() -> None:
    recorder = Recorder(ok({"faces": [FACE]}))
    with client_for(recorder) as fg:
        (face,) = fg.detect(b"\x89PNG\r\n")
    assert "rawlandmarks" not in recorder.last.url.params
    assert recorder.last.headers["content-type"] == "image/png"
    assert face.landmarks is None


def test_spoof() -> None:
    recorder = Recorder(ok({"class": "fake", "score": 0.9, "key": "chk1", "success": True}))
    with client_for(recorder) as fg:
        check = fg.spoof(JPEG)
    assert recorder.last.url.path == "/v1/spdetect"
    assert check.is_fake and check.score == 0.9 and check.check_id == "chk1"


def test_enroll_sends_numbered_base64_images_and_the_optional_fields() -> None:
    recorder = Recorder(ok({"enrollment_id": "e1"}))
    with client_for(recorder) as fg:
        assert fg.enroll([JPEG, b"second"], name="Ada", collection_id="c1") == "e1"
        body = recorder.body()
        assert body == {
            "img0": base64.b64encode(JPEG).decode(),
            "img1": base64.b64encode(b"second").decode(),
            "name": "Ada",
            "collection_id": "c1",
        }
        fg.enroll(JPEG)  # one image, not a sequence of bytes
        assert set(recorder.body()) == {"img0"}
    assert (recorder.last.method, recorder.last.url.path) == ("POST", "/v1/enroll")


def test_enroll_refuses_no_image_or_too_many_before_sending() -> None:
    recorder = Recorder(ok({"enrollment_id": "e1"}))
    with client_for(recorder) as fg:
        with pytest.raises(InvalidInput, match="11 images"):
            fg.enroll([JPEG] * 11)
        with pytest.raises(InvalidInput, match="0 images"):
            fg.enroll([])
    assert recorder.requests == []


def test_enrollment_and_collection_writes() -> None:
    recorder = Recorder(ok({"enrollment_id": "e1"}))
    with client_for(recorder) as fg:
        assert fg.add_images("e1", [JPEG]) == "e1"
        assert recorder.last.method == "PUT" and recorder.body()["enrollment_id"] == "e1"
        recorder.answers = [ok("Enrollment e1 has been deleted", None)]
        assert fg.delete_enrollment("e1") is None
        assert recorder.last.method == "DELETE" and recorder.body() == {"enrollment_id": "e1"}
        recorder.answers = [ok({"collection_id": "c1"})]
        assert fg.create_collection("Home", unknowns=True) == "c1"
        assert recorder.body() == {"name": "Home", "unknowns": True}
        assert fg.add_to_collection("c1", "e1") == "c1"
        assert recorder.last.method == "PUT" and recorder.last.url.path == "/v1/collection"
        assert recorder.body() == {"collection_id": "c1", "enrollment_id": "e1"}
        assert fg.train("c1") == "c1"
        assert recorder.last.url.path == "/v1/train"
        recorder.answers = [ok("Entity c1 has been deleted", None)]
        fg.delete_collection("c1")
        assert recorder.last.method == "DELETE" and recorder.body() == {"collection_id": "c1"}


COLLECTION = {
    "id": "c1",
    "name": "Home",
    "enrollments": ["e1", "e2"],
    "unknown": False,
    "created": "2026-11-29T09:48:29.126059",
    "updated": "2026-11-29T09:48:48.110080",
    "owner": "k1",
    "status": "ready",
    "trained_at": "2026-11-29T09:48:48.190448",
    "classifier_url": "",
    "label_encoder": "",
}


def test_collections_are_typed_with_utc_times() -> None:
    untrained = COLLECTION | {"id": "c2", "status": "untrained", "trained_at": None}
    recorder = Recorder(ok([COLLECTION, untrained]))
    with client_for(recorder) as fg:
        home, other = fg.collections()
        assert fg.collection("c2") == other
        with pytest.raises(NotFound, match="'c3'"):
            fg.collection("c3")
    assert home.enrollment_ids == ("e1", "e2") and home.status == "ready"
    assert home.created == datetime(2026, 11, 29, 9, 48, 29, 126059, tzinfo=UTC)
    assert other.trained_at is None and not other.unknowns


def test_collections_page_their_member_ids() -> None:
    paged = COLLECTION | {"enrollments": ["e3"], "enrollment_count": 3}
    recorder = Recorder(ok([COLLECTION]), ok([paged]))
    with client_for(recorder) as fg:
        (plain,) = fg.collections()
        assert recorder.last.url.params == httpx.QueryParams()  # the seed's request by default
        (page,) = fg.collections(enrollments_limit=2, enrollments_offset=2)
    assert recorder.last.url.params == httpx.QueryParams(
        {"enrollments_limit": "2", "enrollments_offset": "2"}
    )
    # A server without the count listed every id.
    assert plain.enrollment_count == 2
    assert page.enrollment_ids == ("e3",) and page.enrollment_count == 3


def test_async_collections_page_their_member_ids() -> None:
    recorder = Recorder(ok([COLLECTION | {"enrollments": [], "enrollment_count": 2}]))

    async def flow() -> list[Collection]:
        async with AsyncClient(
            "http://fg.test", api_key="k", transport=httpx.MockTransport(recorder)
        ) as fg:
            return await fg.collections(enrollments_limit=0)

    (counted,) = asyncio.run(flow())
    assert recorder.last.url.params == httpx.QueryParams({"enrollments_limit": "0"})
    assert counted.enrollment_ids == () and counted.enrollment_count == 2


def test_train_and_wait_polls_until_training_is_over(sleeps: list[float]) -> None:
    training = COLLECTION | {"status": "training"}
    recorder = Recorder(
        ok({"collection_id": "c1"}), ok([training]), ok([training]), ok([COLLECTION])
    )
    with client_for(recorder) as fg:
        assert fg.train("c1", wait=True) == "c1"
    assert [r.url.path for r in recorder.requests] == ["/v1/train", *["/v1/collection"] * 3]
    assert len(sleeps) == 2


def test_match_scores_in_enrollment_order() -> None:
    data = {
        "emb1_score": 0.2,
        "emb1_match": False,
        "emb0_score": 0.9,
        "emb0_match": True,
        "emb10_score": 0.6,
        "emb10_match": True,
    }
    recorder = Recorder(ok(data))
    with client_for(recorder) as fg:
        result = fg.match(JPEG, "e1", threshold=0.4)
    assert recorder.body() == {"img": base64.b64encode(JPEG).decode(), "id": "e1", "threshold": 0.4}
    assert result.scores == (0.9, 0.2, 0.6) and result.matches == (True, False, True)
    assert result.is_match and result.best_score == 0.9


def test_identify_with_candidates_and_every_face() -> None:
    grace = {"key": "e1", "name": "Grace", "score": 0.99}
    data = {
        "name": "Grace",
        "key": "e1",
        "score": 0.99,
        "unknown_probability": 0.01,
        "candidates": [grace],
        "faces": [
            {"bounding_box": [1, 2, 3, 4, 0.9], **grace, "unknown_probability": 0.01},
            {
                "bounding_box": [5, 6, 7, 8, 0.8],
                "name": None,
                "key": None,
                "score": 0.1,
                "unknown_probability": 0.9,
            },
        ],
    }
    recorder = Recorder(ok(data))
    with client_for(recorder) as fg:
        who = fg.identify(JPEG, "c1", top_k=1, all_faces=True)
    assert recorder.body()["top_k"] == 1 and recorder.body()["all_faces"] is True
    assert who.identified and who.enrollment_id == "e1" and who.candidates[0].name == "Grace"
    assert who.box is None and len(who.faces) == 2
    stranger = who.faces[1]
    assert not stranger.identified and stranger.box == (5, 6, 7, 8) and stranger.confidence == 0.8


def test_identify_sends_only_what_was_asked() -> None:
    data = {"name": None, "key": None, "score": 0.0, "unknown_probability": 1.0}
    recorder = Recorder(ok(data))
    with client_for(recorder) as fg:
        who = fg.identify(JPEG, "c1")
    assert set(recorder.body()) == {"img", "collection_id"}
    assert not who.identified and who.candidates == () and who.faces == ()


# Images in. ----------------------------------------------------------------------------------


def _sent_image(image: Any) -> Image.Image:
    recorder = Recorder(ok({"faces": []}))
    with client_for(recorder) as fg:
        fg.detect(image)
    return Image.open(io.BytesIO(recorder.last.content))


def test_image_inputs(tmp_path: Path) -> None:
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :, 0] = 200
    path = tmp_path / "face.png"
    Image.fromarray(rgb).save(path)
    assert _sent_image(path).format == "PNG"  # a file goes as it is
    assert _sent_image(str(path)).size == (60, 40)
    sent = _sent_image(rgb)
    assert (sent.format, sent.size, sent.mode) == ("JPEG", (60, 40), "RGB")
    assert abs(int(np.asarray(sent)[0, 0, 0]) - 200) <= 2  # RGB order kept
    assert _sent_image(Image.fromarray(rgb).convert("L")).mode == "L"
    assert _sent_image(np.zeros((8, 8), np.uint8)).mode == "L"
    rgba = _sent_image(np.zeros((8, 8, 4), np.uint8))
    assert (rgba.format, rgba.mode) == ("PNG", "RGBA")  # transparency kept
    assert _sent_image(Image.new("CMYK", (8, 8))).mode == "RGB"


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        (np.zeros((8, 8, 3), np.float32), "must be uint8"),
        (np.zeros((8, 8, 2), np.uint8), "H×W×3"),
        (12, "cannot send a int"),
    ],
)
def test_unusable_inputs_are_refused_before_sending(image: Any, fragment: str) -> None:
    recorder = Recorder(ok({"faces": []}))
    with client_for(recorder) as fg, pytest.raises(InvalidInput, match=fragment):
        fg.detect(image)
    assert recorder.requests == []


# Errors. -------------------------------------------------------------------------------------


def test_every_server_error_code_has_a_client_class_with_the_same_place() -> None:
    def server_classes(cls: type[server_errors.FacegateError]) -> list[type[Any]]:
        return [c for sub in cls.__subclasses__() for c in (sub, *server_classes(sub))]

    for server_cls in server_classes(server_errors.FacegateError):
        client_cls = BY_CODE[server_cls.code]
        assert server_cls.status == client_cls.STATUS or client_cls.STATUS == 0
        assert client_cls.__name__ == server_cls.__name__
        parent = server_cls.__mro__[1]
        if parent is not server_errors.FacegateError:
            assert client_cls.__mro__[1] is BY_CODE[parent.code]
    assert BY_CODE["internal_error"] is InternalServerError


def test_the_header_picks_the_exact_class_and_the_message_is_the_servers() -> None:
    recorder = Recorder(refused(422, "img1: face too small", "poor_quality_face"))
    with client_for(recorder) as fg, pytest.raises(PoorQualityFace) as caught:
        fg.enroll([JPEG, JPEG])
    error = caught.value
    assert isinstance(error, NoUsableFace) and isinstance(error, FacegateClientError)
    assert (error.status_code, error.code, error.message) == (
        422,
        "poor_quality_face",
        "img1: face too small",
    )
    assert error.response is not None and str(error).startswith("img1: face too small")


def test_without_the_header_the_status_picks_the_class() -> None:
    recorder = Recorder(refused(422, "img: no face found"))
    with client_for(recorder) as fg, pytest.raises(NoUsableFace) as caught:
        fg.spoof(JPEG)
    assert type(caught.value) is NoUsableFace and caught.value.code == "no_usable_face"
    recorder.answers = [refused(418, "teapot")]
    with client_for(recorder) as fg, pytest.raises(APIError) as other:
        fg.spoof(JPEG)
    assert type(other.value) is BaseAPIError and other.value.status_code == 418


def test_an_unknown_code_from_a_newer_server_falls_back_to_the_status() -> None:
    recorder = Recorder(refused(400, "odd", "some_new_code"))
    with client_for(recorder) as fg, pytest.raises(BadRequest) as caught:
        fg.spoof(JPEG)
    assert type(caught.value) is BadRequest and caught.value.code == "some_new_code"


def test_a_proxy_page_is_an_error_with_its_start_and_a_bad_success_is_a_protocol_error() -> None:
    recorder = Recorder(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with client_for(recorder) as fg, pytest.raises(InternalServerError, match="Bad Gateway"):
        fg.collections()
    recorder.answers = [httpx.Response(200, text="hello")]
    with client_for(recorder) as fg, pytest.raises(ProtocolError, match="envelope"):
        fg.collections()
    recorder.answers = [ok({"unexpected": 1})]
    with client_for(recorder) as fg, pytest.raises(ProtocolError, match="unexpected data"):
        fg.train("c1")


def test_no_answer_is_a_transport_error() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with client_for(unreachable) as fg, pytest.raises(TransportError, match=r"fg\.test") as caught:
        fg.collections()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_the_url_may_carry_v1() -> None:
    recorder = Recorder(ok([]))
    with Client("http://fg.test/v1/", transport=httpx.MockTransport(recorder)) as fg:
        fg.collections()
    assert str(recorder.last.url) == "http://fg.test/v1/collection"
    assert "x-api-key" not in recorder.last.headers


def test_ready_asks_once(sleeps: list[float]) -> None:
    recorder = Recorder(ok({"status": "ready"}))
    with client_for(recorder) as fg:
        assert fg.ready()
        recorder.answers = [refused(503, "not ready: loading", "unavailable")]
        assert not fg.ready()
    assert recorder.last.url.path == "/readyz"
    assert sleeps == [] and len(recorder.requests) == 2


# Retries. ------------------------------------------------------------------------------------


def test_429_is_retried_after_retry_after(sleeps: list[float]) -> None:
    recorder = Recorder(
        refused(429, "slow down", "rate_limited", **{"retry-after": "2"}), ok({"faces": []})
    )
    with client_for(recorder) as fg:
        assert fg.detect(JPEG) == []
    assert sleeps == [2.0] and len(recorder.requests) == 2


def test_503_without_retry_after_backs_off_then_gives_up(sleeps: list[float]) -> None:
    recorder = Recorder(refused(503, "busy", "unavailable"))
    with client_for(recorder, max_retries=3) as fg, pytest.raises(Unavailable, match="busy"):
        fg.detect(JPEG)
    assert sleeps == [0.5, 1.0, 2.0] and len(recorder.requests) == 4


def test_a_wait_over_the_budget_is_not_started(sleeps: list[float]) -> None:
    recorder = Recorder(refused(429, "slow down", "rate_limited", **{"retry-after": "45"}))
    with client_for(recorder, max_retry_wait=30) as fg, pytest.raises(RateLimited) as caught:
        fg.collections()
    assert sleeps == [] and caught.value.retry_after == 45.0 and len(recorder.requests) == 1


def test_the_budget_is_the_total_of_the_waits(sleeps: list[float]) -> None:
    recorder = Recorder(refused(429, "slow down", "rate_limited", **{"retry-after": "4"}))
    with (
        client_for(recorder, max_retries=10, max_retry_wait=10) as fg,
        pytest.raises(RateLimited),
    ):
        fg.collections()
    assert sleeps == [4.0, 4.0]


@pytest.mark.parametrize(
    "answer",
    [
        refused(503, "no spoof model", "model_missing"),
        refused(503, "a model file is not the expected one", "model_corrupt"),
        refused(408, "the body did not arrive in time", "request_timeout"),
        refused(400, "bad", "bad_request"),
        refused(422, "no face", "no_face_found"),
        refused(500, "bug", "internal_error"),
    ],
)
def test_other_refusals_are_not_retried(answer: httpx.Response, sleeps: list[float]) -> None:
    recorder = Recorder(answer)
    with client_for(recorder) as fg, pytest.raises(APIError):
        fg.spoof(JPEG)
    assert sleeps == [] and len(recorder.requests) == 1


def test_retries_can_be_turned_off(sleeps: list[float]) -> None:
    recorder = Recorder(refused(503, "busy", "unavailable"))
    with client_for(recorder, max_retries=0) as fg, pytest.raises(Unavailable):
        fg.collections()
    assert sleeps == []


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(None) is None and retry_after("soon") is None
    now = datetime(2026, 12, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after(later, now=now.timestamp()) == 90.0
    assert (
        retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now.timestamp()) == 0
    )
    assert RetryPolicy().delay(NoFaceFound("x", status_code=422), attempt=0, waited=0.0) is None


# AsyncClient. --------------------------------------------------------------------------------


def test_async_client_has_the_same_behaviour(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(client_module.asyncio, "sleep", fake_sleep)
    recorder = Recorder(
        refused(429, "slow", "rate_limited", **{"retry-after": "1"}),
        ok({"enrollment_id": "e1"}),
        ok({"collection_id": "c1"}),
        ok({"collection_id": "c1"}),
        ok([COLLECTION]),
        refused(404, "no enrollment with id 'x' for this API key", "not_found"),
    )

    async def flow() -> None:
        async with AsyncClient(
            "http://fg.test", api_key="k", transport=httpx.MockTransport(recorder)
        ) as fg:
            assert await fg.enroll([JPEG], name="Ada") == "e1"
            assert await fg.create_collection("Home") == "c1"
            assert await fg.train("c1", wait=True) == "c1"
            with pytest.raises(NotFound, match="'x'"):
                await fg.match(JPEG, "x")

    asyncio.run(flow())
    assert slept == [1.0]
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/v1/enroll"),
        ("POST", "/v1/enroll"),
        ("POST", "/v1/collection"),
        ("POST", "/v1/train"),
        ("GET", "/v1/collection"),
        ("POST", "/v1/match"),
    ]


ENROLLMENT = {
    "id": "e1",
    "name": "Ada",
    "images": 3,
    "collections": ["c1"],
    "recipes": [{"recipe": "sface@2021dec/arcface112", "tta": "none", "images": 3}],
    "created": "2026-11-29T09:48:31.532260",
    "updated": "2026-11-29T09:48:31.532260",
}


def _page(ids: list[str], total: int, limit: int, offset: int) -> httpx.Response:
    entries = [ENROLLMENT | {"id": i} for i in ids]
    return ok({"enrollments": entries, "total": total, "limit": limit, "offset": offset})


def test_enrollments_are_listed_a_page_at_a_time_and_shown_by_id() -> None:
    recorder = Recorder(_page(["e1", "e2"], 3, 2, 0))
    with client_for(recorder) as fg:
        page = fg.enrollments(limit=2)
        assert recorder.last.url.path == "/v1/enroll"
        assert dict(recorder.last.url.params) == {"limit": "2", "offset": "0"}
        assert page.total == 3 and page.next_offset == 2
        first = page.enrollments[0]
        assert (first.name, first.images, first.collection_ids) == ("Ada", 3, ("c1",))
        assert first.recipes[0].recipe == "sface@2021dec/arcface112"
        assert first.created == datetime(2026, 11, 29, 9, 48, 31, 532260, tzinfo=UTC)
        recorder.answers = [_page(["e1", "e2"], 3, 2, 0), _page(["e3"], 3, 2, 2)]
        assert [e.id for e in fg.iter_enrollments(page_size=2)] == ["e1", "e2", "e3"]
        assert dict(recorder.last.url.params) == {"limit": "2", "offset": "2"}
        recorder.answers = [ok(ENROLLMENT | {"id": "a/b"})]
        assert fg.enrollment("a/b").id == "a/b"
        # An opaque id is one path segment, whatever it holds.
        assert recorder.last.url.raw_path == b"/v1/enroll/a%2Fb"
        recorder.answers = [refused(404, "no enrollment with id 'x' for this API key", "not_found")]
        with pytest.raises(NotFound, match="'x'"):
            fg.enrollment("x")
    recorder = Recorder(_page([], 0, 50, 0))
    with client_for(recorder) as fg:
        assert list(fg.iter_enrollments()) == [] and len(recorder.requests) == 1


def test_async_enrollments() -> None:
    recorder = Recorder(_page(["e1"], 2, 1, 0), _page(["e2"], 2, 1, 1), ok(ENROLLMENT))

    async def flow() -> list[str]:
        async with AsyncClient(
            "http://fg.test", api_key="k", transport=httpx.MockTransport(recorder)
        ) as fg:
            ids = [e.id async for e in fg.iter_enrollments(page_size=1)]
            assert (await fg.enrollment("e1")).name == "Ada"
            return ids

    assert asyncio.run(flow()) == ["e1", "e2"]
