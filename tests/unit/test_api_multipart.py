"""multipart/form-data on the fake engine: the same answers as JSON, and precise refusals."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient

from facegate.api.app import create_app
from facegate.config import Settings
from facegate.service.container import Services

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine, Tenants


def _data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert set(response.json()) == {"data", "message", "success"}
    return response.json()["data"]


def _refused(response: Any, status: int, code: str, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["x-facegate-error"] == code
    assert fragment in response.json()["message"], response.json()["message"]


def _png(faces: Faces, *colours: tuple[int, int, int]) -> tuple[str, bytes, str]:
    return ("face.png", faces.png(*colours), "image/png")


def test_facedetect_takes_an_img_file_a_file_alias_or_base64_text(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    image = _png(faces, faces.alice, faces.bob)
    for files in ({"img": image}, {"file": image}):
        data = _data(client.post("/v1/facedetect", files=files, headers=tenants.alice))
        assert len(data["faces"]) == 2
    text = client.post(
        "/v1/facedetect?rawlandmarks=true",
        files={"img": (None, faces.b64(faces.alice))},
        headers=tenants.alice,
    )
    assert len(_data(text)["faces"][0]["landmarks"]) == 68


def test_spdetect(client: TestClient, tenants: Tenants, faces: Faces, engine: FakeEngine) -> None:
    engine.spoof_score = 0.1
    data = _data(
        client.post("/v1/spdetect", files={"img": _png(faces, faces.alice)}, headers=tenants.alice)
    )
    assert data["class"] == "real"


def test_enroll_update_train_match_identify_as_forms(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    headers = tenants.alice
    collection = _data(
        client.post("/v1/collection", files={"name": (None, "home")}, headers=headers)
    )["collection_id"]
    alice = _data(
        client.post(
            "/v1/enroll",
            data={"name": "Alice", "collection_id": collection},
            files={"img0": _png(faces, faces.alice), "img1": _png(faces, faces.alice)},
            headers=headers,
        )
    )["enrollment_id"]
    updated = client.put(
        "/v1/enroll",
        data={"enrollment_id": alice},
        files={"img0": _png(faces, faces.alice)},
        headers=headers,
    )
    assert _data(updated)["enrollment_id"] == alice
    bob = _data(
        client.post(
            "/v1/enroll",
            data={"name": "Bob", "collection_id": collection},
            files={"img0": _png(faces, faces.bob)},
            headers=headers,
        )
    )["enrollment_id"]
    _data(client.post("/v1/train", files={"collection_id": (None, collection)}, headers=headers))
    deadline = time.monotonic() + 10
    while _data(client.get("/v1/collection", headers=headers))[0]["status"] != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    match = _data(
        client.post(
            "/v1/match",
            data={"id": alice, "threshold": "0.4"},
            files={"img": _png(faces, faces.alice)},
            headers=headers,
        )
    )
    assert [match[f"emb{i}_match"] for i in range(3)] == [True, True, True]
    who = _data(
        client.post(
            "/v1/identify",
            data={"collection_id": collection, "top_k": "2", "all_faces": "true"},
            files={"img": _png(faces, faces.bob, faces.alice)},
            headers=headers,
        )
    )
    assert who["key"] == bob and [f["key"] for f in who["faces"]] == [bob, alice]
    assert len(who["candidates"]) == 2


def test_form_refusals(client: TestClient, tenants: Tenants, faces: Faces) -> None:
    headers = tenants.alice
    image = _png(faces, faces.alice)
    _refused(
        client.post("/v1/facedetect", files={"photo": image}, headers=headers),
        400,
        "bad_request",
        "img: is required",
    )
    _refused(
        client.post("/v1/match", data={"id": "x"}, files={"image": image}, headers=headers),
        400,
        "bad_request",
        "image: a file is accepted only as img",
    )
    eleven = {f"img{i}": image for i in range(11)}
    _refused(
        client.post("/v1/enroll", files=eleven, headers=headers),
        400,
        "too_many_images",
        "11 images sent",
    )
    _refused(
        client.post("/v1/enroll", files={"img0": image, "name": image}, headers=headers),
        400,
        "bad_request",
        "name: a file is accepted only as img",
    )
    twice = [("img", image), ("img", image)]
    _refused(
        client.post("/v1/facedetect", files=twice, headers=headers),
        400,
        "bad_request",
        "img: sent more than once",
    )
    empty = {"img0": ("e.png", b"", "image/png")}
    _refused(client.post("/v1/enroll", files=empty, headers=headers), 400, "empty_image", "img0:")
    empty_single = {"img": ("e.png", b"", "image/png")}
    _refused(
        client.post("/v1/facedetect", files=empty_single, headers=headers),
        400,
        "empty_image",
        "img: the image is empty",
    )
    not_image = {"img0": ("x.txt", b"hello", "text/plain")}
    _refused(
        client.post("/v1/enroll", files=not_image, headers=headers),
        400,
        "invalid_image",
        "img0:",
    )
    no_boundary = {**headers, "content-type": "multipart/form-data"}
    _refused(
        client.post("/v1/facedetect", content=b"junk", headers=no_boundary),
        400,
        "bad_request",
        "boundary",
    )


def test_an_oversized_file_is_413_naming_the_field(
    settings: Settings, engine: FakeEngine, faces: Faces
) -> None:
    small = settings.model_copy(update={"max_image_bytes": 1000})
    app = create_app(small, engine)
    services: Services = app.state.services
    headers = {"x-api-key": services.keys.create("k").secret}
    big = ("big.png", faces.png(faces.alice, size=300) + b"\0" * 1000, "image/png")
    with TestClient(app) as client:
        _refused(
            client.post("/v1/facedetect", files={"img": big}, headers=headers),
            413,
            "image_too_large",
            "img: the image is",
        )
        _refused(
            client.post("/v1/enroll", files={"img0": big}, headers=headers),
            413,
            "image_too_large",
            "img0:",
        )


def test_urlencoded_forms_stay_refused(client: TestClient, tenants: Tenants) -> None:
    response = client.post("/v1/collection", data={"name": "home"}, headers=tenants.alice)
    _refused(response, 415, "unsupported_media_type", "application/x-www-form-urlencoded")
