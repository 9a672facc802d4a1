"""Real faces end to end: enroll two people from three photos each (package-shipped images with
augmentations), train, identify both from photos not enrolled, and reject a third person."""

from __future__ import annotations

import pytest

from tests.integration.conftest import BOTH_BACKENDS, LiveServer, Photos, envelope_data, wait_ready

pytestmark = pytest.mark.integration
# Every test here runs on SQLite and on PostgreSQL, each on its own live server.
LIVE_BACKENDS = BOTH_BACKENDS


@pytest.fixture(scope="module")
def people(live: LiveServer, photos: type[Photos]) -> dict[str, str]:
    client = live.client("alice")
    ids = {}
    for unknowns in (False, True):
        ids[f"collection_{unknowns}"] = envelope_data(
            client.post(
                "/collection", json={"name": f"e2e unknowns={unknowns}", "unknowns": unknowns}
            )
        )["collection_id"]
    for name, photo in (("Grace Hopper", photos.grace), ("Eileen Collins", photos.eileen)):
        body = {f"img{i}": photos.b64(photo(variant)) for i, variant in enumerate((0, 1, 2))}
        ids[name] = envelope_data(
            client.post(
                "/enroll", json={**body, "name": name, "collection_id": ids["collection_False"]}
            )
        )["enrollment_id"]
        envelope_data(
            client.put(
                "/collection",
                json={"collection_id": ids["collection_True"], "enrollment_id": ids[name]},
            )
        )
    envelope_data(client.post("/train", json={"collection_id": ids["collection_False"]}))
    for unknowns in (False, True):
        entry = wait_ready(client, ids[f"collection_{unknowns}"])
        assert sorted(entry["enrollments"]) == sorted([ids["Grace Hopper"], ids["Eileen Collins"]])
        assert entry["trained_at"] is not None
        assert entry["size"] == {"enrollments": 2, "embeddings": 6}
        assert 0 < entry["identify_threshold"] < 1 and entry["warning"] is None
    return ids


@pytest.mark.parametrize("unknowns", [False, True])
def test_each_person_is_identified_from_a_new_photo(
    live: LiveServer, photos: type[Photos], people: dict[str, str], unknowns: bool
) -> None:
    client = live.client("alice")
    # Variants 3 (mirrored, more contrast) and 5 (darker, smaller) were not enrolled.
    for name, photo, variant in (
        ("Grace Hopper", photos.grace, 5),
        ("Eileen Collins", photos.eileen, 3),
    ):
        data = envelope_data(
            client.post(
                "/identify",
                json={
                    "img": photos.b64(photo(variant)),
                    "collection_id": people[f"collection_{unknowns}"],
                    "top_k": 2,
                },
            )
        )
        assert (data["name"], data["key"]) == (name, people[name])
        runner_up = data["candidates"][1]
        assert runner_up["key"] != people[name]
        assert data["score"] > 0.5 > runner_up["score"]
        # The 1:N probability that they are not enrolled, given the collection's 6 embeddings.
        assert data["unknown_probability"] < 0.05


@pytest.mark.parametrize(("unknowns", "member"), [(False, 1), (True, 1), (False, 0)])
def test_a_third_person_is_rejected_as_unknown(
    live: LiveServer, photos: type[Photos], people: dict[str, str], unknowns: bool, member: int
) -> None:
    data = envelope_data(
        live.client("alice").post(
            "/identify",
            json={
                "img": photos.b64(photos.member(member)),
                "collection_id": people[f"collection_{unknowns}"],
            },
        )
    )
    assert data["name"] is None and data["key"] is None
    assert data["unknown_probability"] > 0.5


def test_all_faces_identifies_everyone_in_one_picture(
    live: LiveServer, photos: type[Photos], people: dict[str, str]
) -> None:
    data = envelope_data(
        live.client("alice").post(
            "/identify",
            json={
                "img": photos.b64(photos.side_by_side()),
                "collection_id": people["collection_False"],
                "all_faces": True,
            },
        )
    )
    assert len(data["faces"]) == 2
    left_to_right = sorted(data["faces"], key=lambda face: face["bounding_box"][0])
    assert [face["name"] for face in left_to_right] == ["Grace Hopper", "Eileen Collins"]
    assert data["name"] == data["faces"][0]["name"]  # the largest face at the top level


def test_match_accepts_the_person_and_refuses_another(
    live: LiveServer, photos: type[Photos], people: dict[str, str]
) -> None:
    client = live.client("alice")
    same = envelope_data(
        client.post(
            "/match", json={"img": photos.b64(photos.grace(4)), "id": people["Grace Hopper"]}
        )
    )
    other = envelope_data(
        client.post(
            "/match",
            json={
                "img": photos.b64(photos.eileen(4)),
                "id": people["Grace Hopper"],
                "threshold": "0.4",
            },
        )
    )
    assert all(same[f"emb{i}_match"] for i in range(3))
    assert not any(other[f"emb{i}_match"] for i in range(3))
    assert min(same[f"emb{i}_score"] for i in range(3)) > max(
        other[f"emb{i}_score"] for i in range(3)
    )


def test_another_tenant_cannot_identify_in_this_collection(
    live: LiveServer, photos: type[Photos], people: dict[str, str]
) -> None:
    response = live.client("bob").post(
        "/identify",
        json={"img": photos.b64(photos.grace(5)), "collection_id": people["collection_False"]},
    )
    assert response.status_code == 404
