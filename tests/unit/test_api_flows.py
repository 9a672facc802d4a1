"""The v1 endpoints end to end on the fake engine: answers, messages, tenancy, training states."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from facegate.engine.registry import Recipe
from facegate.service.container import Services
from facegate.store.models import Embedding, SpoofCheck

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine, Tenants


def _data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data", "message", "success"}
    assert body["success"] is (status == 200)
    return body["data"]


def _collection(client: TestClient, headers: dict[str, str], collection_id: str) -> dict[str, Any]:
    listed = _data(client.get("/v1/collection", headers=headers))
    return next(c for c in listed if c["id"] == collection_id)


def _wait_status(
    client: TestClient, headers: dict[str, str], collection_id: str, want: str
) -> None:
    deadline = time.monotonic() + 10
    while _collection(client, headers, collection_id)["status"] != want:
        assert time.monotonic() < deadline, f"collection never became {want}"
        time.sleep(0.02)


def _enroll(
    client: TestClient,
    headers: dict[str, str],
    faces: Faces,
    *colours: tuple[int, int, int],
    **extra: Any,
) -> str:
    body = {f"img{i}": faces.b64(c) for i, c in enumerate(colours)} | extra
    response = client.post("/v1/enroll", json=body, headers=headers)
    assert response.json()["message"] == "enrollment processed successfully"
    enrollment_id: str = _data(response)["enrollment_id"]
    return enrollment_id


@pytest.fixture
def trained(client: TestClient, tenants: Tenants, faces: Faces) -> dict[str, str]:
    """A trained collection of Alice (3 images) and Bob (2 images)."""
    headers = tenants.alice
    collection_id = _data(client.post("/v1/collection", json={"name": "home"}, headers=headers))[
        "collection_id"
    ]
    alice = _enroll(
        client,
        headers,
        faces,
        faces.alice,
        faces.alice,
        faces.alice,
        name="Alice",
        collection_id=collection_id,
    )
    bob = _enroll(client, headers, faces, faces.bob, faces.bob, name="Bob")
    put = client.put(
        "/v1/collection",
        json={"collection_id": collection_id, "enrollment_id": bob},
        headers=headers,
    )
    assert put.json()["message"] == "collection updated successfully"
    _wait_status(client, headers, collection_id, "ready")
    return {"collection": collection_id, "alice": alice, "bob": bob}


def test_identify_names_the_enrolled_person_and_rejects_a_stranger(
    client: TestClient, tenants: Tenants, faces: Faces, trained: dict[str, str]
) -> None:
    for colour, name, key in (
        (faces.alice, "Alice", trained["alice"]),
        (faces.bob, "Bob", trained["bob"]),
    ):
        response = client.post(
            "/v1/identify",
            json={"img": faces.b64(colour), "collection_id": trained["collection"]},
            headers=tenants.alice,
        )
        assert response.json()["message"] == "identify processed successfully"
        data = _data(response)
        assert (data["name"], data["key"]) == (name, key)
        assert data["score"] > 0.9
        assert data["unknown_probability"] < 0.01
        assert "candidates" not in data and "faces" not in data
    stranger = _data(
        client.post(
            "/v1/identify",
            json={"img": faces.b64(faces.stranger), "collection_id": trained["collection"]},
            headers=tenants.alice,
        )
    )
    assert stranger["name"] is None and stranger["key"] is None
    assert stranger["unknown_probability"] > 0.5


def test_identify_top_k_and_all_faces(
    client: TestClient, tenants: Tenants, faces: Faces, trained: dict[str, str]
) -> None:
    data = _data(
        client.post(
            "/v1/identify",
            json={
                "img": faces.b64(faces.bob, faces.stranger, faces.alice),
                "collection_id": trained["collection"],
                "all_faces": "true",
                "top_k": 2,
            },
            headers=tenants.alice,
        )
    )
    assert [face["name"] for face in data["faces"]] == ["Bob", None, "Alice"]
    assert data["name"] == "Bob"  # the first (largest) face at the top level, as the seed had
    for face in data["faces"]:
        assert len(face["bounding_box"]) == 5
        assert len(face["candidates"]) == 2
        scores = [c["score"] for c in face["candidates"]]
        assert scores == sorted(scores, reverse=True)
    assert {c["key"] for c in data["candidates"]} == {trained["alice"], trained["bob"]}


def test_unknowns_collection_holds_a_stricter_fpir(
    client: TestClient, tenants: Tenants, faces: Faces, settings: Any
) -> None:
    # A query 0.78 from the one enrollment (blue 250 vs 0): within the plain collection's
    # threshold for FPIR 1 % (0.85 for one embedding), not the unknowns one's for 0.1 % (0.7).
    headers = tenants.alice
    enrolled = _enroll(client, headers, faces, (200, 40, 0), name="A")
    answers, listed = {}, {}
    for unknowns in (False, True):
        collection_id = _data(
            client.post(
                "/v1/collection",
                json={"name": f"u{unknowns}", "unknowns": unknowns},
                headers=headers,
            )
        )["collection_id"]
        client.put(
            "/v1/collection",
            json={"collection_id": collection_id, "enrollment_id": enrolled},
            headers=headers,
        )
        _wait_status(client, headers, collection_id, "ready")
        listed[unknowns] = _collection(client, headers, collection_id)
        answers[unknowns] = _data(
            client.post(
                "/v1/identify",
                json={"img": faces.b64((200, 40, 250)), "collection_id": collection_id},
                headers=headers,
            )
        )
    plain, strict = answers[False], answers[True]
    assert plain["key"] == enrolled
    assert strict["key"] is None and strict["name"] is None
    assert plain["score"] == pytest.approx(strict["score"])  # the 1:1 score is the same
    assert listed[False]["target_fpir"] == settings.identify_target_fpir
    assert listed[True]["target_fpir"] == settings.unknowns_target_fpir
    assert (
        listed[False]["identify_threshold"] <= plain["score"] < listed[True]["identify_threshold"]
    )


def test_listing_shows_the_snapshot_size_and_its_threshold(
    client: TestClient, tenants: Tenants, faces: Faces, trained: dict[str, str]
) -> None:
    listed = _collection(client, tenants.alice, trained["collection"])
    # Alice was enrolled from three images, Bob from two.
    assert listed["size"] == {"enrollments": 2, "embeddings": 5}
    assert 0 < listed["identify_threshold"] < 1
    assert 0 < listed["expected_tpir"] <= 1 and listed["warning"] is None
    fresh = _data(client.post("/v1/collection", json={"name": "new"}, headers=tenants.alice))
    untrained = _collection(client, tenants.alice, fresh["collection_id"])
    assert untrained["size"] is None and untrained["identify_threshold"] is None


def test_training_states_move_untrained_ready_stale_ready(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    headers = tenants.alice
    collection_id = _data(client.post("/v1/collection", json={"name": "c"}, headers=headers))[
        "collection_id"
    ]
    fresh = _collection(client, headers, collection_id)
    assert (fresh["status"], fresh["trained_at"]) == ("untrained", None)
    not_trained = client.post(
        "/v1/identify",
        json={"img": faces.b64(faces.alice), "collection_id": collection_id},
        headers=headers,
    )
    assert not_trained.status_code == 409
    assert "/v1/train" in not_trained.json()["message"]

    enrollment = _enroll(client, headers, faces, faces.alice, collection_id=collection_id)
    train = client.post("/v1/train", json={"collection_id": collection_id}, headers=headers)
    assert train.json()["message"] == "retraining the classifier"
    assert _data(train) == {"collection_id": collection_id}
    _wait_status(client, headers, collection_id, "ready")
    assert _collection(client, headers, collection_id)["trained_at"] is not None

    client.put(
        "/v1/enroll",
        json={"enrollment_id": enrollment, "img0": faces.b64(faces.alice)},
        headers=headers,
    )
    assert _collection(client, headers, collection_id)["status"] == "stale"
    # A stale collection still answers from its last snapshot.
    still = _data(
        client.post(
            "/v1/identify",
            json={"img": faces.b64(faces.alice), "collection_id": collection_id},
            headers=headers,
        )
    )
    assert still["key"] == enrollment


def test_match_scores_every_stored_embedding(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    headers = tenants.alice
    enrollment = _enroll(client, headers, faces, faces.alice, (200, 40, 255))
    update = client.put(
        "/v1/enroll",
        json={"enrollment_id": enrollment, "img0": faces.b64(faces.alice)},
        headers=headers,
    )
    assert update.json()["message"] == "enrollment updated successfully"
    response = client.post(
        "/v1/match", json={"img": faces.b64(faces.alice), "id": enrollment}, headers=headers
    )
    assert response.json()["message"] == "face processed successfully"
    data = _data(response)
    assert set(data) == {f"emb{i}_{k}" for i in range(3) for k in ("score", "match")}
    assert [data[f"emb{i}_match"] for i in range(3)] == [True, False, True]
    strict = _data(
        client.post(
            "/v1/match",
            json={"img": faces.b64(faces.alice), "id": enrollment, "threshold": "1"},
            headers=headers,
        )
    )
    assert strict["emb0_match"] is (strict["emb0_score"] >= 1.0)


def test_facedetect_takes_raw_bytes_or_json_and_landmarks_on_request(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    raw = _data(
        client.post(
            "/v1/facedetect",
            content=faces.png(faces.alice, faces.nobody, faces.bob),
            headers={**tenants.alice, "content-type": "image/png"},
        )
    )
    assert len(raw["faces"]) == 2
    first = raw["faces"][0]
    assert len(first["bounding_box"]) == 5 and len(first["points"]) == 10
    assert "landmarks" not in first
    assert set(first["quality"]) == {
        "eye_distance_px",
        "sharpness",
        "yaw_deg",
        "pitch_deg",
        "face_size_px",
    }
    for spelling in ("rawlandmarks", "rawlandmark"):
        detailed = _data(
            client.post(
                f"/v1/facedetect?{spelling}=true",
                json={"img": faces.b64(faces.alice)},
                headers=tenants.alice,
            )
        )
        assert len(detailed["faces"][0]["landmarks"]) == 68
    empty = _data(
        client.post("/v1/facedetect", json={"img": faces.b64(faces.nobody)}, headers=tenants.alice)
    )
    assert empty == {"faces": []}


def test_spdetect_is_503_without_a_model_and_records_checks_with_one(
    client: TestClient, tenants: Tenants, faces: Faces, engine: FakeEngine, services: Services
) -> None:
    missing = client.post(
        "/v1/spdetect",
        content=faces.png(faces.alice),
        headers={**tenants.alice, "content-type": "image/png"},
    )
    assert missing.status_code == 503
    assert "not available" in missing.json()["message"]
    engine.spoof_score = 0.8
    response = client.post(
        "/v1/spdetect", json={"img": faces.b64(faces.alice)}, headers=tenants.alice
    )
    assert response.json()["message"] == "data processed successfully"
    data = _data(response)
    assert data["class"] == "fake" and data["score"] == pytest.approx(0.8)
    assert data["success"] is True and isinstance(data["key"], str) and data["key"]
    with services.database.reading() as session:
        record = session.get_one(SpoofCheck, data["key"])
    assert record.label == "fake" and record.score == pytest.approx(0.8)


def test_each_key_sees_only_its_own_collections_and_enrollments(
    client: TestClient, tenants: Tenants, faces: Faces, trained: dict[str, str]
) -> None:
    bob = tenants.bob
    assert _data(client.get("/v1/collection", headers=bob)) == []
    attempts = [
        (
            "POST",
            "/v1/identify",
            {"img": faces.b64(faces.alice), "collection_id": trained["collection"]},
        ),
        ("POST", "/v1/match", {"img": faces.b64(faces.alice), "id": trained["alice"]}),
        ("PUT", "/v1/enroll", {"enrollment_id": trained["alice"], "img0": faces.b64(faces.alice)}),
        ("DELETE", "/v1/enroll", {"enrollment_id": trained["alice"]}),
        ("DELETE", "/v1/collection", {"collection_id": trained["collection"]}),
        ("POST", "/v1/train", {"collection_id": trained["collection"]}),
        (
            "PUT",
            "/v1/collection",
            {"collection_id": trained["collection"], "enrollment_id": trained["alice"]},
        ),
        (
            "POST",
            "/v1/enroll",
            {"img0": faces.b64(faces.bob), "collection_id": trained["collection"]},
        ),
    ]
    for method, path, body in attempts:
        response = client.request(method, path, json=body, headers=bob)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["data"] is None
    assert len(_collection(client, tenants.alice, trained["collection"])["enrollments"]) == 2


def test_delete_enrollment_removes_it_from_identify_and_collections(
    client: TestClient,
    tenants: Tenants,
    faces: Faces,
    trained: dict[str, str],
    services: Services,
) -> None:
    headers = tenants.alice
    response = client.request(
        "DELETE", "/v1/enroll", json={"enrollment_id": trained["alice"]}, headers=headers
    )
    assert response.json() == {
        "data": f"Enrollment {trained['alice']} has been deleted",
        "message": None,
        "success": True,
    }
    listed = _collection(client, headers, trained["collection"])
    assert listed["enrollments"] == [trained["bob"]]
    assert listed["status"] == "stale"
    after = _data(
        client.post(
            "/v1/identify",
            json={"img": faces.b64(faces.alice), "collection_id": trained["collection"]},
            headers=headers,
        )
    )
    assert after["key"] is None
    again = client.request(
        "DELETE", "/v1/enroll", json={"enrollment_id": trained["alice"]}, headers=headers
    )
    assert again.status_code == 404


def test_delete_collection_keeps_its_enrollments(
    client: TestClient, tenants: Tenants, faces: Faces, trained: dict[str, str]
) -> None:
    headers = tenants.alice
    response = client.request(
        "DELETE", "/v1/collection", json={"collection_id": trained["collection"]}, headers=headers
    )
    assert response.json() == {
        "data": f"Entity {trained['collection']} has been deleted",
        "message": None,
        "success": True,
    }
    assert _data(client.get("/v1/collection", headers=headers)) == []
    match = client.post(
        "/v1/match", json={"img": faces.b64(faces.bob), "id": trained["bob"]}, headers=headers
    )
    assert _data(match)["emb0_match"] is True


def test_collection_listing_fields_and_unknowns_as_string(
    client: TestClient, tenants: Tenants
) -> None:
    headers = tenants.alice
    created = client.post(
        "/v1/collection", json={"name": "Home", "unknowns": "true"}, headers=headers
    )
    assert created.json()["message"] == "collection created successfully"
    listed = _data(client.get("/v1/collection", headers=headers))
    assert len(listed) == 1
    entry = listed[0]
    assert set(entry) >= {
        "id",
        "name",
        "enrollments",
        "unknown",
        "created",
        "updated",
        "owner",
        "status",
        "trained_at",
    }
    assert entry["unknown"] is True and entry["name"] == "Home" and entry["enrollments"] == []
    assert entry["created"][10] == "T"


def test_inference_runs_off_the_event_loop_in_the_bounded_pool(
    client: TestClient, tenants: Tenants, faces: Faces, services: Services
) -> None:
    assert services.inference.workers == 2
    _enroll(client, tenants.alice, faces, faces.carol)
    assert services.inference.in_flight == 0


def test_an_empty_trained_collection_knows_nobody(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    headers = tenants.alice
    collection_id = _data(client.post("/v1/collection", json={"name": "empty"}, headers=headers))[
        "collection_id"
    ]
    client.post("/v1/train", json={"collection_id": collection_id}, headers=headers)
    _wait_status(client, headers, collection_id, "ready")
    data = _data(
        client.post(
            "/v1/identify",
            json={"img": faces.b64(faces.alice), "collection_id": collection_id, "top_k": 3},
            headers=headers,
        )
    )
    assert data == {
        "name": None,
        "key": None,
        "score": 0.0,
        "unknown_probability": 1.0,
        "candidates": [],
    }


def test_enrollment_images_are_embedded_in_one_network_call(
    client: TestClient, tenants: Tenants, faces: Faces, engine: FakeEngine
) -> None:
    calls_before, faces_before = engine.embed_calls, engine.embedded_faces
    _enroll(client, tenants.alice, faces, (200, 40, 40), (200, 40, 40), (200, 40, 40))
    assert engine.embed_calls - calls_before == 1
    assert engine.embedded_faces - faces_before == 3


def test_vectors_of_another_recipe_are_refused_with_409_saying_what_to_do(
    client: TestClient,
    tenants: Tenants,
    faces: Faces,
    trained: dict[str, str],
    engine: FakeEngine,
    services: Services,
) -> None:
    made_by = engine.recipe.key
    # The server now runs another recogniser: what was enrolled before is another space.
    engine.recipe = Recipe("other", "2", "chips", 128, normalized=True)
    with services.database.reading() as session:
        before = session.scalar(select(func.count()).select_from(Embedding))
    match = client.post(
        "/v1/match",
        json={"img": faces.b64(faces.alice), "id": trained["alice"]},
        headers=tenants.alice,
    )
    assert match.status_code == 409
    body = match.json()
    assert body["success"] is False and body["data"] is None
    assert made_by in body["message"] and "other@2/chips" in body["message"]
    assert "PUT /v1/enroll" in body["message"]
    identify = client.post(
        "/v1/identify",
        json={"img": faces.b64(faces.alice), "collection_id": trained["collection"]},
        headers=tenants.alice,
    )
    assert identify.status_code == 409
    assert made_by in identify.json()["message"] and "POST /v1/train" in identify.json()["message"]
    # Adding the images again on this server makes the enrollment usable, nothing is lost.
    client.put(
        "/v1/enroll",
        json={"enrollment_id": trained["alice"], "img0": faces.b64(faces.alice)},
        headers=tenants.alice,
    )
    again = client.post(
        "/v1/match",
        json={"img": faces.b64(faces.alice), "id": trained["alice"]},
        headers=tenants.alice,
    )
    assert again.status_code == 200
    assert list(_data(again)) == ["emb0_score", "emb0_match"]  # only this recipe's embedding
    with services.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Embedding)) == before + 1
        recipes = set(session.scalars(select(Embedding.recipe)))
    assert recipes == {made_by, "other@2/chips"}
