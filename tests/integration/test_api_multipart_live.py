"""multipart/form-data on every image endpoint of the live server, as curl -F sends it: real
faces, real HTTP, the same answers as the JSON and raw-bytes forms."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveServer, Photos

pytestmark = pytest.mark.integration


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _jpeg(data: bytes, name: str = "photo.jpg") -> tuple[str, bytes, str]:
    return (name, data, "image/jpeg")


def test_facedetect_and_spdetect(live: LiveServer, photos: type[Photos]) -> None:
    client = live.client("alice")
    as_form = _data(client.post("/facedetect", files={"img": _jpeg(photos.side_by_side())}))
    as_bytes = _data(
        client.post(
            "/facedetect",
            content=photos.side_by_side(),
            headers={"content-type": "image/jpeg"},
        )
    )
    assert as_form == as_bytes and len(as_form["faces"]) == 2
    landmarks = _data(
        client.post(
            "/facedetect", params={"rawlandmarks": "true"}, files={"file": _jpeg(photos.grace(0))}
        )
    )
    assert len(landmarks["faces"][0]["landmarks"]) == 68
    spoof = _data(client.post("/spdetect", files={"img": _jpeg(photos.grace(0))}))
    assert spoof["class"] in ("real", "fake") and spoof["key"]
    nobody = client.post("/spdetect", files={"img": _jpeg(photos.no_face())})
    assert nobody.status_code == 422 and nobody.headers["x-facegate-error"] == "no_face_found"


def test_enroll_update_match_identify(live: LiveServer, photos: type[Photos]) -> None:
    client = live.client("bob")
    collection = _data(
        client.post("/collection", files={"name": (None, "multipart"), "unknowns": (None, "false")})
    )["collection_id"]
    grace = _data(
        client.post(
            "/enroll",
            data={"name": "Grace Hopper", "collection_id": collection},
            files={"img0": _jpeg(photos.grace(0)), "img1": _jpeg(photos.grace(1))},
        )
    )["enrollment_id"]
    eileen = _data(
        client.post(
            "/enroll",
            data={"name": "Eileen Collins", "collection_id": collection},
            files={"img0": _jpeg(photos.eileen(0))},
        )
    )["enrollment_id"]
    updated = client.put(
        "/enroll", data={"enrollment_id": grace}, files={"img0": _jpeg(photos.grace(2))}
    )
    assert _data(updated) == {"enrollment_id": grace}
    assert updated.json()["message"] == "enrollment updated successfully"

    match = _data(
        client.post(
            "/match", data={"id": grace, "threshold": "0.5"}, files={"img": _jpeg(photos.grace(5))}
        )
    )
    assert [match[f"emb{i}_match"] for i in range(3)] == [True, True, True]

    _data(client.post("/train", files={"collection_id": (None, collection)}))
    deadline = time.monotonic() + 60
    while (
        next(c for c in _data(client.get("/collection")) if c["id"] == collection)["status"]
        != "ready"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    who = _data(
        client.post(
            "/identify",
            data={"collection_id": collection, "top_k": "2", "all_faces": "true"},
            files={"img": _jpeg(photos.side_by_side())},
        )
    )
    assert [f["key"] for f in who["faces"]] == [grace, eileen]
    assert who["name"] == "Grace Hopper" and len(who["candidates"]) == 2

    refused = client.post(
        "/enroll", files={"img0": _jpeg(photos.grace(0)), "img1": _jpeg(photos.no_face())}
    )
    assert refused.status_code == 422 and refused.json()["message"] == "img1: no face found"
