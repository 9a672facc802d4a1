"""The spoof model file, its fitting and the run-time detector: no data folder, no detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.config import Settings
from facegate.engine.spoof import SpoofDetector, load_spoof_detector, model_path
from facegate.engine.spoof.features import FeatureConfig
from facegate.engine.spoof.model import SpoofModel
from facegate.engine.types import DetectedFace
from facegate.errors import BadRequest, ModelMissing
from facegate.spoof.data import Sample
from facegate.spoof.fit import fit_head, session_aware_folds
from tests.factories import astronaut_rgb, grace_hopper_rgb

# Where the detector puts the faces of the package-shipped photos (measured once); fixed here so
# that these tests need no detector.
GRACE_HOPPER_BOX = (166.5, 105.6, 347.4, 336.9)
ASTRONAUT_BOX = (178.8, 59.2, 266.9, 172.1)


def _face(box: tuple[float, float, float, float]) -> DetectedFace:
    return DetectedFace(box, 0.99, np.zeros((5, 2), np.float32))


@pytest.fixture(scope="module")
def shipped() -> SpoofDetector:
    return load_spoof_detector(Settings())


# The shipped model -------------------------------------------------------------------------
def test_shipped_model_is_small_and_says_where_it_came_from() -> None:
    path = model_path()
    assert path.stat().st_size < 4 * 1024 * 1024
    model = SpoofModel.load(path)
    assert model.config.kind == "cnn"
    assert "NUAA" in model.meta["training_data"]
    assert model.meta["command"].startswith("facegate spoof train")


def test_shipped_model_calls_bona_fide_package_photos_real(shipped: SpoofDetector) -> None:
    # Both are photographs of people, not of prints or screens: the model must say "real".
    threshold = Settings().spoof_threshold
    assert shipped.probability_fake(grace_hopper_rgb(), _face(GRACE_HOPPER_BOX)) < threshold
    assert shipped.probability_fake(astronaut_rgb(), _face(ASTRONAUT_BOX)) < threshold


def test_shipped_model_is_deterministic(shipped: SpoofDetector) -> None:
    face = _face(ASTRONAUT_BOX)
    assert shipped.probability_fake(astronaut_rgb(), face) == shipped.probability_fake(
        astronaut_rgb(), face
    )


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((64, 64), np.uint8), "H x W x 3"),
        (np.zeros((64, 64, 4), np.uint8), "H x W x 3"),
        (np.zeros((64, 64, 3), np.float32), "uint8"),
        (np.zeros((1, 64, 3), np.uint8), "too small"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_images_are_refused_clearly(
    shipped: SpoofDetector, image: object, message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        shipped.probability_fake(image, _face((10, 10, 40, 40)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((10, 10, 10, 40), "empty"),
        ((500, 500, 600, 600), "outside"),
        ((float("nan"), 0, 10, 10), "not finite"),
    ],
)
def test_bad_boxes_are_refused_clearly(
    shipped: SpoofDetector, box: tuple[float, float, float, float], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        shipped.probability_fake(np.zeros((64, 64, 3), np.uint8), _face(box))


def test_missing_model_file_is_a_503(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="missing") as caught:
        load_spoof_detector(Settings(), tmp_path / "spoof_model.npz")
    assert caught.value.status == 503


def test_corrupt_model_file_is_a_503(tmp_path: Path) -> None:
    path = tmp_path / "spoof_model.npz"
    path.write_bytes(b"not a model")
    with pytest.raises(ModelMissing, match="unreadable"):
        load_spoof_detector(Settings(), path)


# Model file and fitting --------------------------------------------------------------------
def _separable(n: int, dims: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fake = np.arange(n) % 2 == 0
    x = rng.normal(0, 1, (n, dims)).astype(np.float32)
    x[:, 0] += np.where(fake, 2.5, -2.5)
    return x, fake


def _samples(n: int, *, sessions: bool) -> list[Sample]:
    return [
        Sample(
            "set",
            f"{i}.jpg",
            Path(f"{i}.jpg"),
            i % 2 == 0,
            "train",
            f"person{i % 6}",
            f"s{i % 2}" if sessions else "",
        )
        for i in range(n)
    ]


def test_folds_never_train_on_a_held_out_session_or_person() -> None:
    samples = _samples(48, sessions=True)
    folds = session_aware_folds(samples)
    assert folds
    for fold in folds:
        held_sessions = {samples[i].session for i in fold.test}
        held_people = {samples[i].subject for i in fold.test}
        assert len(held_sessions) == 1
        assert not {samples[i].session for i in fold.train} & held_sessions
        assert not {samples[i].subject for i in fold.train} & held_people


def test_folds_without_sessions_split_by_person() -> None:
    samples = _samples(24, sessions=False)
    folds = session_aware_folds(samples)
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(24))  # every sample is held out exactly once
    for fold in folds:
        assert not (
            {samples[i].subject for i in fold.train} & {samples[i].subject for i in fold.test}
        )


def test_fit_calibrates_and_round_trips_through_the_file(tmp_path: Path) -> None:
    config = FeatureConfig(kind="lbp", scales=(1.0,), size=32, spectrum_bins=0)
    x, fake = _separable(60, config.length)
    x = np.abs(x) + np.where(fake, 3.0, 0.0)[:, None]  # non-negative, for the Hellinger map
    folds = session_aware_folds(_samples(60, sessions=False))
    fit = fit_head(
        x, fake, folds, config, hellinger=True, c_grid=(0.1, 1.0), meta={"note": "unit test"}
    )
    assert fit.c in (0.1, 1.0)
    assert fit.cv.acer < 0.2
    path = tmp_path / "model.npz"
    fit.model.save(path)
    loaded = SpoofModel.load(path)
    assert loaded.meta == {"note": "unit test"}
    assert loaded.config == config
    np.testing.assert_allclose(loaded.probability(x), fit.model.probability(x), rtol=1e-5)
    probability = loaded.probability(x)
    assert ((probability >= 0.5) == fake).mean() > 0.8


def test_fit_refuses_features_that_do_not_tell_the_classes_apart() -> None:
    config = FeatureConfig(kind="lbp", scales=(1.0,), size=32)
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (60, config.length)).astype(np.float32)
    fake = rng.random(60) < 0.5
    folds = session_aware_folds(_samples(60, sessions=False))
    with pytest.raises(ValueError, match="do not separate"):
        fit_head(x, fake, folds, config, c_grid=(1.0,))


def test_fit_needs_both_classes() -> None:
    config = FeatureConfig(kind="lbp", scales=(1.0,), size=32)
    x, _ = _separable(20, config.length)
    with pytest.raises(ValueError, match="both"):
        fit_head(x, np.zeros(20, bool), [], config)


def test_model_file_of_another_format_is_refused(tmp_path: Path) -> None:
    config = FeatureConfig(kind="lbp", scales=(1.0,), size=32)
    n = config.length
    model = SpoofModel(
        config,
        False,
        np.zeros(n, np.float32),
        np.ones(n, np.float32),
        np.zeros(n, np.float32),
        0.0,
        1.0,
        0.0,
    )
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["format_version"] = np.array(99, np.int32)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format 99"):
        SpoofModel.load(path)


def test_model_refuses_weights_of_the_wrong_length() -> None:
    config = FeatureConfig(kind="lbp", scales=(1.0,), size=32)
    with pytest.raises(ValueError, match="shape"):
        SpoofModel(
            config,
            False,
            np.zeros(3, np.float32),
            np.ones(3, np.float32),
            np.zeros(3, np.float32),
            0.0,
            1.0,
            0.0,
        )
