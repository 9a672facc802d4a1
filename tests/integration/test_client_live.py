"""facegate.client against the live server: every endpoint, typed results, real refusals as
the client's exception classes, and the AsyncClient on the same server."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from facegate.client import (
    AsyncClient,
    Client,
    Collection,
    InvalidImage,
    NoFaceFound,
    NotFound,
    NotTrained,
    PoorQualityFace,
    Unauthorized,
)
from tests.factories import augmented, grace_hopper_rgb
from tests.integration.conftest import LiveServer, Photos

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fg(live: LiveServer) -> Iterator[Client]:
    with Client(live.base_url, api_key=live.keys["alice"]) as client:
        yield client


@pytest.fixture(scope="module")
def enrolled(fg: Client, photos: type[Photos]) -> dict[str, str]:
    """Grace (three photos given as bytes, a numpy array and a PIL image) and Eileen, in a
    trained collection."""
    home = fg.create_collection("client home")
    grace = fg.enroll(
        [
            photos.grace(0),
            augmented(grace_hopper_rgb(), 1),  # numpy RGB
            Image.open(io.BytesIO(photos.grace(2))),  # PIL
        ],
        name="Grace Hopper",
        collection_id=home,
    )
    eileen = fg.enroll([photos.eileen(0), photos.eileen(1)], name="Eileen Collins")
    assert fg.add_to_collection(home, eileen) == home
    assert fg.train(home, wait=True) == home
    return {"home": home, "grace": grace, "eileen": eileen}


def test_detect_with_and_without_landmarks(fg: Client, photos: type[Photos]) -> None:
    (face,) = fg.detect(photos.grace(0))
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 and 0 <= y1 < y2 and face.confidence > 0.9
    assert len(face.points) == 5 and face.landmarks is None
    assert face.quality is not None and face.quality.eye_distance_px > 20
    (with_landmarks,) = fg.detect(photos.grace(0), landmarks=True)
    assert with_landmarks.landmarks is not None and len(with_landmarks.landmarks) == 68
    assert fg.detect(photos.no_face()) == []
    assert len(fg.detect(photos.side_by_side())) == 2


def test_spoof(fg: Client, photos: type[Photos]) -> None:
    check = fg.spoof(photos.grace(0))
    assert check.label in ("real", "fake") and 0 <= check.score <= 1 and check.check_id
    with pytest.raises(NoFaceFound, match="no face found") as caught:
        fg.spoof(photos.no_face())
    assert caught.value.status_code == 422 and caught.value.code == "no_face_found"


def test_collections_listing_and_training_state(fg: Client, enrolled: dict[str, str]) -> None:
    home = fg.collection(enrolled["home"])
    assert isinstance(home, Collection) and home.name == "client home"
    assert sorted(home.enrollment_ids) == sorted([enrolled["grace"], enrolled["eileen"]])
    assert home.status == "ready" and home.trained_at is not None
    assert home.trained_at.tzinfo is not None and not home.unknowns
    assert enrolled["home"] in {c.id for c in fg.collections()}


def test_enrollments_listed_and_shown(
    live: LiveServer, fg: Client, enrolled: dict[str, str]
) -> None:
    everything = {e.id: e for e in fg.iter_enrollments(page_size=1)}
    grace = everything[enrolled["grace"]]
    assert grace.name == "Grace Hopper" and grace.images == 3
    assert grace.collection_ids == (enrolled["home"],)
    # The recipe the server's engine (YuNet + SFace at the defaults) wrote with each embedding.
    assert [(r.recipe, r.tta, r.images) for r in grace.recipes] == [
        ("sface@2021dec/arcface112", "none", 3)
    ]
    assert fg.enrollment(enrolled["eileen"]).images == 2
    page = fg.enrollments(limit=1)
    assert page.total == len(everything) and len(page.enrollments) == 1
    with Client(live.base_url, api_key=live.keys["bob"]) as bob:
        assert enrolled["grace"] not in {e.id for e in bob.iter_enrollments()}
        with pytest.raises(NotFound, match="for this API key") as caught:
            bob.enrollment(enrolled["grace"])
    assert caught.value.code == "not_found"


def test_match(fg: Client, photos: type[Photos], enrolled: dict[str, str]) -> None:
    same = fg.match(photos.grace(5), enrolled["grace"])
    assert len(same.scores) == 3 and same.is_match and same.best_score > 0.9
    other = fg.match(photos.member(0), enrolled["grace"], threshold=0.4)
    assert not other.is_match and other.best_score < 0.4


def test_identify_top_k_and_all_faces(
    fg: Client, photos: type[Photos], enrolled: dict[str, str]
) -> None:
    who = fg.identify(photos.grace(5), enrolled["home"])
    assert who.identified and who.name == "Grace Hopper" and who.enrollment_id == enrolled["grace"]
    assert who.candidates == () and who.faces == ()
    stranger = fg.identify(photos.member(0), enrolled["home"], top_k=2)
    assert not stranger.identified and stranger.unknown_probability > 0.5
    assert {c.enrollment_id for c in stranger.candidates} == {enrolled["grace"], enrolled["eileen"]}
    both = fg.identify(photos.side_by_side(), enrolled["home"], all_faces=True)
    assert [f.name for f in both.faces] == ["Grace Hopper", "Eileen Collins"]
    assert all(f.box is not None and f.confidence for f in both.faces)


def test_enrollment_updates_and_deletion(fg: Client, photos: type[Photos]) -> None:
    collection = fg.create_collection("client scratch", unknowns=True)
    person = fg.enroll(photos.eileen(2), collection_id=collection)
    assert fg.add_images(person, [photos.eileen(3)]) == person
    assert len(fg.match(photos.eileen(0), person).scores) == 2
    fg.delete_enrollment(person)
    with pytest.raises(NotFound, match=person):
        fg.match(photos.eileen(0), person)
    assert fg.collection(collection).enrollment_ids == ()
    assert fg.collection(collection).unknowns
    fg.delete_collection(collection)
    with pytest.raises(NotFound):
        fg.collection(collection)
    with pytest.raises(NotFound):
        fg.delete_collection(collection)


def test_refusals_arrive_as_their_classes(
    live: LiveServer, fg: Client, photos: type[Photos]
) -> None:
    untrained = fg.create_collection("client untrained")
    with pytest.raises(NotTrained, match="has not been trained"):
        fg.identify(photos.grace(0), untrained)
    with pytest.raises(NoFaceFound, match="img1: no face found"):
        fg.enroll([photos.grace(0), photos.no_face()])
    tiny = np.ascontiguousarray(
        np.asarray(Image.open(io.BytesIO(photos.grace(0))).resize((64, 48)))
    )
    with pytest.raises((PoorQualityFace, NoFaceFound)):
        fg.enroll(tiny)
    with pytest.raises(InvalidImage, match="img0"):
        fg.enroll(b"not an image")
    with (
        Client(live.base_url, api_key=live.keys["revoked"]) as revoked,
        pytest.raises(Unauthorized),
    ):
        revoked.collections()
    # Another tenant's collection does not exist for bob.
    with Client(live.base_url, api_key=live.keys["bob"]) as bob, pytest.raises(NotFound):
        bob.train(untrained)
    assert fg.ready()


def test_async_client(live: LiveServer, photos: type[Photos], enrolled: dict[str, str]) -> None:
    async def flow() -> None:
        async with AsyncClient(f"{live.base_url}/v1", api_key=live.keys["alice"]) as fg:
            assert await fg.ready()
            faces, who = await asyncio.gather(
                fg.detect(photos.eileen(3)), fg.identify(photos.eileen(3), enrolled["home"])
            )
            assert len(faces) == 1 and who.name == "Eileen Collins"
            check = await fg.spoof(photos.eileen(0))
            assert check.label in ("real", "fake")
            collection = await fg.create_collection("client async")
            person = await fg.enroll([photos.eileen(0)], name="Eileen")
            await fg.add_to_collection(collection, person)
            await fg.add_images(person, photos.eileen(1))
            await fg.train(collection, wait=True)
            assert (await fg.match(photos.eileen(3), person)).is_match
            assert (await fg.collection(collection)).enrollment_ids == (person,)
            assert person in {c for entry in await fg.collections() for c in entry.enrollment_ids}
            await fg.delete_enrollment(person)
            await fg.delete_collection(collection)

    asyncio.run(flow())
