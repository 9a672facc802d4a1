"""The engine on real models and real faces from package-shipped images."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from facegate.config import Settings
from facegate.engine.engine import FaceEngine
from facegate.errors import NoFaceFound
from tests.factories import (
    astronaut_rgb,
    augmented,
    encode,
    grace_hopper_rgb,
    group_member_rgb,
    group_photo_bytes,
    group_photo_rgb,
    phone_photo_bytes,
)

pytestmark = pytest.mark.integration


@pytest.fixture(
    scope="module",
    params=[
        pytest.param({}, id="defaults"),  # YuNet + SFace
        pytest.param({"detector": "mtcnn", "recognizer": "dlib"}, id="mtcnn-dlib"),
    ],
)
def engine(request: pytest.FixtureRequest) -> FaceEngine:
    return FaceEngine(Settings(**request.param))


def test_finds_one_face_with_points_inside_the_box(engine: FaceEngine) -> None:
    faces = engine.detect(engine.decode(encode(grace_hopper_rgb())))
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    assert face.confidence > 0.9
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.points)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.points
    assert left_eye[0] < nose[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert len(face.points_flat) == 10


def test_finds_all_six_people_in_the_group_photo(engine: FaceEngine) -> None:
    faces = engine.detect(engine.decode(group_photo_bytes()))
    assert len(faces) == 6
    areas = [f.area for f in faces]
    # Largest first; the first may be a same-sized neighbour nearer the centre (by_prominence).
    assert areas[0] >= 0.8 * max(areas)
    assert areas[1:] == sorted(areas[1:], reverse=True)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_largest_only_finds_the_same_largest_face(engine: FaceEngine) -> None:
    for image in (engine.decode(group_photo_bytes()), engine.decode(encode(grace_hopper_rgb()))):
        everyone = engine.detect(image)
        largest = engine.detect(image, largest_only=True)
        assert len(largest) == 1
        assert _iou(largest[0].box, everyone[0].box) > 0.9
        assert largest[0].quality is not None


def test_largest_only_falls_back_to_small_faces(engine: FaceEngine) -> None:
    # One face far smaller than a fifth of the image: the coarse pass finds nothing.
    face = engine.decode(encode(grace_hopper_rgb()))
    small = np.asarray(
        Image.fromarray(face.rgb).resize((face.width // 8, face.height // 8)), np.uint8
    )
    canvas = np.full((small.shape[0] * 6, small.shape[1] * 6, 3), 128, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    image = engine.decode(encode(canvas))
    everyone = engine.detect(image)
    assert len(everyone) == 1
    assert [f.box for f in engine.detect(image, largest_only=True)] == [everyone[0].box]


def test_detection_is_deterministic(engine: FaceEngine) -> None:
    image = engine.decode(group_photo_bytes())
    first, second = engine.detect(image), engine.detect(image)
    assert [f.box for f in first] == [f.box for f in second]


def test_no_face_in_noise_or_flat_images(engine: FaceEngine) -> None:
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    flat = np.full((200, 200, 3), 90, np.uint8)
    for rgb in (noise, flat):
        assert engine.detect(engine.decode(encode(rgb, "PNG"))) == []
    with pytest.raises(NoFaceFound):
        engine.largest_face(engine.decode(encode(flat, "PNG")))


def test_landmarks68_on_request(engine: FaceEngine) -> None:
    image = engine.decode(encode(grace_hopper_rgb()))
    face = engine.detect(image, landmarks68=True)[0]
    assert face.landmarks68 is not None and face.landmarks68.shape == (68, 2)
    x1, y1, x2, y2 = face.box
    inside = [(x1 - 10 <= x <= x2 + 10) and (y1 - 10 <= y <= y2 + 10) for x, y in face.landmarks68]
    assert all(inside)
    assert engine.detect(image)[0].landmarks68 is None


def test_quality_is_reported(engine: FaceEngine) -> None:
    face = engine.detect(engine.decode(encode(grace_hopper_rgb())))[0]
    assert face.quality is not None
    assert face.quality.eye_distance_px > 50
    assert abs(face.quality.yaw_deg) < 20
    assert face.quality.sharpness > 30


def test_same_person_scores_high_and_others_low(engine: FaceEngine) -> None:
    hopper = engine.largest_face(engine.decode(encode(grace_hopper_rgb()))).descriptor
    hopper_variant = engine.largest_face(
        engine.decode(encode(augmented(grace_hopper_rgb(), 2)))
    ).descriptor
    collins = engine.largest_face(engine.decode(encode(astronaut_rgb()))).descriptor
    stranger = engine.largest_face(engine.decode(encode(group_member_rgb(0)))).descriptor
    assert engine.similarity(hopper, hopper_variant) > 0.8
    assert engine.similarity(hopper, collins) < 0.2
    assert engine.similarity(hopper, stranger) < 0.2
    gallery = np.stack([hopper_variant, collins, stranger])
    assert int(np.argmax(engine.similarities(hopper, gallery))) == 0


def test_engine_is_usable_from_many_threads(engine: FaceEngine) -> None:
    image = engine.decode(encode(astronaut_rgb()))
    expected = engine.largest_face(image).descriptor
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(engine.largest_face(image).descriptor)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(np.allclose(r, expected, atol=1e-5) for r in results)


def test_tta_views_are_deterministic_and_consistent(engine: FaceEngine) -> None:
    from facegate.engine import align

    image = engine.decode(encode(grace_hopper_rgb()))
    face = engine.detect(image)[0]
    views = engine.embed_views([(image, face)], align.ALL_VIEWS)
    assert views.shape == (1, 6, engine.recipe.dimension)
    again = engine.embed_views([(image, face)], align.ALL_VIEWS)
    assert np.array_equal(views, again)
    # The mean over the configured mode's views (unit length for a unit recipe) is what
    # embed() returns.
    mean = views[0, list(align.VIEW_INDEX[engine.tta])].mean(axis=0)
    if engine.recipe.normalized:
        mean /= np.linalg.norm(mean)
    assert np.allclose(engine.embed(image, [face])[0], mean, atol=1e-6)
    # Every view is the same person: all pairwise distances stay well inside the match region.
    spread = np.linalg.norm(views[0][:, None] - views[0][None], axis=-1).max()
    assert spread < engine.calibration.distance_at(0.9)


def test_mirrored_view_is_the_mirror_of_the_chip(engine: FaceEngine) -> None:
    from facegate.engine import align

    image = engine.decode(encode(grace_hopper_rgb()))
    face = engine.detect(image)[0]
    plain, mirrored = engine.face_chips(
        image, face, [align.View(1.0, False), align.View(1.0, True)]
    )
    assert np.array_equal(mirrored, plain[:, ::-1])


def test_a_three_quarter_view_is_estimated_near_30_degrees_and_enrollable(
    engine: FaceEngine,
) -> None:
    """t1.jpg's laughing man (box near x 748-847) is turned about 30 degrees: the old estimate
    read such faces as 90 and refused them."""
    faces = engine.detect(engine.decode(group_photo_bytes()))
    turned = min(faces, key=lambda f: abs(f.box[0] - 748) + abs(f.box[1] - 353))
    assert turned.quality is not None
    assert 20 <= abs(turned.quality.yaw_deg) <= 40
    settings = engine.settings
    assert (
        turned.quality.problems(
            min_eye_distance=settings.min_enroll_eye_distance,
            max_abs_yaw=settings.max_enroll_abs_yaw,
        )
        == []
    )


def test_the_gate_refuses_a_face_turned_past_its_limit_with_the_reason(
    engine: FaceEngine,
) -> None:
    """t1.jpg's man in the top right (box near x 906) is turned strongly (YuNet's points read
    about 60 degrees, MTCNN's about 42): accepted by the default gate (70, set on LFW View 1),
    refused by a stricter one, with the reason."""
    from facegate.errors import PoorQualityFace
    from facegate.service.images import FaceReader

    image = engine.decode(encode(group_member_rgb(2)))
    face = engine.detect(image)[0]
    assert face.quality is not None and 40 <= abs(face.quality.yaw_deg) <= 70
    assert FaceReader(engine, engine.settings).enrollable_face("img0", image) is not None
    strict = engine.settings.model_copy(update={"max_enroll_abs_yaw": 35.0})
    with pytest.raises(PoorQualityFace, match=r"img0: face turned too far \(-?\d+ degrees\)"):
        FaceReader(engine, strict).enrollable_face("img0", image)


def test_a_phone_photo_is_decoded_small_and_answered_in_its_own_coordinates(
    engine: FaceEngine,
) -> None:
    """4000x3000 JPEG: decoded at 2000x1500 (draft mode), faces in the 4000x3000 frame."""
    decoded = engine.decode(phone_photo_bytes())
    assert (decoded.width, decoded.height, decoded.scale) == (2000, 1500, 2.0)
    faces = engine.detect(decoded)
    reference = engine.detect(engine.decode(encode(group_photo_rgb(), quality=95)))
    assert len(reference) == 6
    # YuNet finds the six; MTCNN a seventh, not a face, at this size (issue 12, item 10).
    assert len(faces) == 6 if engine.settings.detector == "yunet" else len(faces) >= 6
    height, width = group_photo_rgb().shape[:2]
    fx, fy = 4000 / width, 3000 / height
    original = engine.decode(encode(group_photo_rgb(), quality=95))
    for ref in reference:
        expected = np.array(ref.box) * [fx, fy, fx, fy]
        # Faces of about one size may come in another order: pair each with the nearest.
        face = min(faces, key=lambda f: float(np.abs(np.array(f.box) - expected).sum()))
        assert np.abs(np.array(face.box) - expected).max() < 0.15 * (face.box[2] - face.box[0])
        assert face.quality is not None and ref.quality is not None
        # Sizes are in the upload's pixels (the upscale stretches 3:2 to 4:3: between fx and fy).
        grown = face.quality.face_size_px / ref.quality.face_size_px
        assert fx * 0.9 <= grown <= fy * 1.1
        # Alignment reads the decoded pixels at the right place: the same person.
        mine, theirs = engine.embed(decoded, [face])[0], engine.embed(original, [ref])[0]
        assert engine.similarity(mine, theirs) > 0.9
