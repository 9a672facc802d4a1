"""Every example of the seed reference, translated to Python 3, against the live server.

The seed's examples post ``json.dumps(data)`` with the key header (``data=`` in requests); they
run here the same way, once in the order a new user would follow them, and each answer is then
checked for its envelope, its fields and their types.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import BOTH_BACKENDS, LiveServer, Photos

pytestmark = pytest.mark.integration
# Every test here runs on SQLite and on PostgreSQL, each on its own live server.
LIVE_BACKENDS = BOTH_BACKENDS

Answers = dict[str, httpx.Response]


def _envelope(response: httpx.Response, message: str | None, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"data", "message", "success"}
    assert body["success"] is (status == 200)
    if message is not None or status == 200:
        assert body["message"] == message
    return body["data"]


@pytest.fixture(scope="module")
def seed(live: LiveServer, photos: type[Photos]) -> Answers:
    """Run the seed walkthrough once; tests below check one answer each."""
    base = f"{live.base_url}/v1"
    headers = {"x-api-key": live.keys["alice"]}
    json_headers = {**headers, "Content-Type": "application/json"}
    answers: Answers = {}
    with httpx.Client(timeout=120) as http:

        def post(name: str, path: str, data: dict[str, Any], method: str = "POST") -> Any:
            answers[name] = http.request(
                method, base + path, content=json.dumps(data), headers=json_headers
            )
            return answers[name].json()["data"]

        # curl -X POST -H "x-api-key: ..." -H "Content-Type: image/jpeg" --data-binary "@real_1.jpg"
        answers["facedetect"] = http.post(
            base + "/facedetect",
            content=photos.grace(),
            headers={**headers, "Content-Type": "image/jpeg"},
        )
        answers["facedetect_json"] = http.post(
            base + "/facedetect?rawlandmark=true",
            content=json.dumps({"img": photos.b64(photos.grace())}),
            headers=json_headers,
        )
        answers["spdetect"] = http.post(
            base + "/spdetect",
            content=photos.grace(),
            headers={**headers, "Content-Type": "image/jpeg"},
        )
        collection = post("collection", "/collection", {"name": "Home", "unknowns": True})
        collection_id = collection["collection_id"]
        enrolled = post(
            "enroll",
            "/enroll",
            {
                "img0": photos.b64(photos.grace(0)),
                "img1": photos.b64(photos.grace(1)),
                "img2": photos.b64(photos.grace(2)),
                "name": "John Doe",
            },
        )
        enrollment_id = enrolled["enrollment_id"]
        # Without the Content-Type header, as requests sends a str body: accepted too.
        other = http.post(
            base + "/enroll",
            headers=headers,
            content=json.dumps(
                {
                    "img0": photos.b64(photos.eileen(0)),
                    "name": "Jane Doe",
                    "collection_id": collection_id,
                }
            ),
        )
        answers["enroll_without_content_type"] = other
        post(
            "enroll_update",
            "/enroll",
            {"enrollment_id": enrollment_id, "img0": photos.b64(photos.grace(3))},
            method="PUT",
        )
        post(
            "collection_update",
            "/collection",
            {"collection_id": collection_id, "enrollment_id": enrollment_id},
            method="PUT",
        )
        post("train", "/train", {"collection_id": collection_id})
        deadline = time.monotonic() + 60
        while True:
            answers["collections"] = http.get(base + "/collection", headers=headers)
            listed = answers["collections"].json()["data"]
            if next(c for c in listed if c["id"] == collection_id)["status"] == "ready":
                break
            assert time.monotonic() < deadline, "training never finished"
            time.sleep(0.1)
        post("match", "/match", {"img": photos.b64(photos.grace(5)), "id": enrollment_id})
        post(
            "identify",
            "/identify",
            {"img": photos.b64(photos.grace(5)), "collection_id": collection_id},
        )
        post(
            "enroll_delete",
            "/enroll",
            {"enrollment_id": other.json()["data"]["enrollment_id"]},
            method="DELETE",
        )
        post("collection_delete", "/collection", {"collection_id": collection_id}, method="DELETE")
        post("enroll_delete_last", "/enroll", {"enrollment_id": enrollment_id}, method="DELETE")
    answers["ids"] = httpx.Response(
        200, json={"collection": collection_id, "enrollment": enrollment_id}
    )
    return answers


def _ids(seed: Answers) -> dict[str, str]:
    ids: dict[str, str] = seed["ids"].json()
    return ids


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_face_detection_binary_payload(seed: Answers) -> None:
    data = _envelope(seed["facedetect"], "face processed successfully")
    assert len(data["faces"]) == 1
    face = data["faces"][0]
    assert len(face["bounding_box"]) == 5 and all(_is_number(v) for v in face["bounding_box"])
    x1, y1, x2, y2, confidence = face["bounding_box"]
    assert x1 < x2 and y1 < y2 and 0 < confidence <= 1
    xs, ys = face["points"][:5], face["points"][5:]
    assert all(x1 <= x <= x2 for x in xs) and all(y1 <= y <= y2 for y in ys)
    assert "landmarks" not in face


def test_face_detection_json_payload_with_raw_landmarks(seed: Answers) -> None:
    face = _envelope(seed["facedetect_json"], "face processed successfully")["faces"][0]
    assert len(face["landmarks"]) == 68
    assert all(len(point) == 2 and all(_is_number(v) for v in point) for point in face["landmarks"])


def test_spoof_detection_answers_class_score_and_record_key(seed: Answers) -> None:
    data = _envelope(seed["spdetect"], "data processed successfully")
    assert set(data) == {"class", "score", "key", "success"}
    assert data["class"] in ("real", "fake") and 0 <= data["score"] <= 1
    assert data["class"] == ("fake" if data["score"] >= 0.5 else "real")
    assert isinstance(data["key"], str) and data["success"] is True


def test_create_a_collection(seed: Answers) -> None:
    data = _envelope(seed["collection"], "collection created successfully")
    assert set(data) == {"collection_id"} and isinstance(data["collection_id"], str)


def test_enrollment(seed: Answers) -> None:
    data = _envelope(seed["enroll"], "enrollment processed successfully")
    assert set(data) == {"enrollment_id"} and isinstance(data["enrollment_id"], str)
    assert data["enrollment_id"].replace("-", "").replace("_", "").isalnum()  # URL-safe
    _envelope(seed["enroll_without_content_type"], "enrollment processed successfully")


def test_update_enrollment(seed: Answers) -> None:
    data = _envelope(seed["enroll_update"], "enrollment updated successfully")
    assert data == {"enrollment_id": _ids(seed)["enrollment"]}


def test_update_a_collection(seed: Answers) -> None:
    data = _envelope(seed["collection_update"], "collection updated successfully")
    assert data == {"collection_id": _ids(seed)["collection"]}


def test_train_a_collection_classifier(seed: Answers) -> None:
    data = _envelope(seed["train"], "retraining the classifier")
    assert data == {"collection_id": _ids(seed)["collection"]}


def test_get_a_list_of_your_collections(seed: Answers) -> None:
    listed = _envelope(seed["collections"], "collections listed successfully")
    entry = next(c for c in listed if c["id"] == _ids(seed)["collection"])
    assert entry["name"] == "Home" and entry["unknown"] is True
    assert len(entry["enrollments"]) == 2 and _ids(seed)["enrollment"] in entry["enrollments"]
    for key in ("created", "updated", "trained_at"):
        assert isinstance(entry[key], str) and entry[key][4] == "-" and entry[key][10] == "T"
    assert isinstance(entry["owner"], str) and entry["status"] == "ready"


def test_face_match(seed: Answers) -> None:
    data = _envelope(seed["match"], "face processed successfully")
    assert set(data) == {f"emb{i}_{k}" for i in range(4) for k in ("score", "match")}
    for i in range(4):
        assert _is_number(data[f"emb{i}_score"]) and 0 <= data[f"emb{i}_score"] <= 1
        assert data[f"emb{i}_match"] is (data[f"emb{i}_score"] >= 0.5)
        assert data[f"emb{i}_match"] is True  # the same person, another photo


def test_face_identify(seed: Answers) -> None:
    data = _envelope(seed["identify"], "identify processed successfully")
    assert data["name"] == "John Doe" and data["key"] == _ids(seed)["enrollment"]
    assert 0 <= data["score"] <= 1 and 0 <= data["unknown_probability"] <= 1


def test_delete_enrollment(seed: Answers, live: LiveServer) -> None:
    response = seed["enroll_delete_last"]
    assert response.json() == {
        "data": f"Enrollment {_ids(seed)['enrollment']} has been deleted",
        "message": None,
        "success": True,
    }
    assert seed["enroll_delete"].json()["message"] is None


def test_delete_a_collection(seed: Answers) -> None:
    assert seed["collection_delete"].json() == {
        "data": f"Entity {_ids(seed)['collection']} has been deleted",
        "message": None,
        "success": True,
    }


def test_deleted_data_is_gone_from_the_store(seed: Answers, live: LiveServer) -> None:
    client = live.client("alice")
    assert (
        client.post("/match", json={"img": "aGk=", "id": _ids(seed)["enrollment"]}).status_code
        == 404
    )
    assert all(
        c["id"] != _ids(seed)["collection"] for c in client.get("/collection").json()["data"]
    )
    for table in ("enrollments", "embeddings", "collection_members"):
        column = "id" if table == "enrollments" else "enrollment_id"
        sql = f"SELECT count(*) FROM {table} WHERE {column} = ?"
        assert live.scalar(sql, _ids(seed)["enrollment"]) == 0, table
    assert (
        live.scalar("SELECT count(*) FROM collections WHERE id = ?", _ids(seed)["collection"]) == 0
    )
