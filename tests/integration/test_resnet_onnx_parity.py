"""Parity of the ONNX conversion of dlib's face ResNet with dlib itself."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from facegate.engine.resnet_onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    cached_model_name,
    ensure_resnet_onnx,
)

pytestmark = pytest.mark.integration

dlib = pytest.importorskip("dlib")
ort = pytest.importorskip("onnxruntime")
face_recognition_models = pytest.importorskip("face_recognition_models")

Image = npt.NDArray[np.uint8]

MIN_COSINE = 0.9999


def _grace_hopper() -> Image:
    cbook = pytest.importorskip("matplotlib.cbook")
    pil_image = pytest.importorskip("PIL.Image")
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with pil_image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _astronaut() -> Image:
    skimage_data = pytest.importorskip("skimage.data")
    return np.asarray(skimage_data.astronaut())


SOURCES: dict[str, Callable[[], Image]] = {
    "grace_hopper": _grace_hopper,
    "astronaut": _astronaut,
}


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return Path(face_recognition_models.face_recognition_model_location())


@pytest.fixture(scope="module")
def onnx_path(dat_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_resnet_onnx(dat_path, tmp_path_factory.mktemp("onnx-cache"))


@pytest.fixture(scope="module")
def session(onnx_path: Path) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def recognizer(dat_path: Path) -> Any:
    return dlib.face_recognition_model_v1(str(dat_path))


@pytest.fixture(scope="module")
def chips() -> dict[str, Image]:
    """150x150 aligned chips: the best face of each image, and its mirror image."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(
        face_recognition_models.pose_predictor_five_point_model_location()
    )
    out: dict[str, Image] = {}
    for name, load in SOURCES.items():
        image = np.ascontiguousarray(load())
        faces = detector(image, 0)
        assert len(faces) >= 1, f"no face found in {name}"
        chip = np.asarray(
            dlib.get_face_chip(image, predictor(image, faces[0]), size=150, padding=0.25)
        )
        out[name] = chip
        out[f"{name}_mirrored"] = np.ascontiguousarray(chip[:, ::-1])
    return out


def _run(session: Any, batch: list[Image]) -> npt.NDArray[np.float32]:
    x = np.stack([c.transpose(2, 0, 1) for c in batch]).astype(np.float32)
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    return np.asarray(out)


def _cosine(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("chip_name", [f"{n}{s}" for n in SOURCES for s in ("", "_mirrored")])
def test_descriptor_matches_dlib(
    chip_name: str, chips: dict[str, Image], session: Any, recognizer: Any
) -> None:
    chip = chips[chip_name]
    expected = np.asarray(recognizer.compute_face_descriptor(chip), dtype=np.float64)
    got = _run(session, [chip])
    assert got.shape == (1, 128)
    assert got.dtype == np.float32
    assert _cosine(got[0], expected) >= MIN_COSINE
    np.testing.assert_allclose(got[0], expected, atol=1e-4)


def test_batch_matches_single_runs(chips: dict[str, Image], session: Any) -> None:
    batch = list(chips.values())
    batched = _run(session, batch)
    singles = np.concatenate([_run(session, [chip]) for chip in batch])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_different_people_are_far_apart(chips: dict[str, Image], session: Any) -> None:
    hopper, astronaut = _run(session, [chips["grace_hopper"], chips["astronaut"]])
    assert float(np.linalg.norm(hopper - astronaut)) > 0.6  # dlib's same-person threshold


def test_model_signature(session: Any) -> None:
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    assert inp.name == INPUT_NAME
    assert inp.shape[1:] == [3, 150, 150]
    assert isinstance(inp.shape[0], str)  # dynamic batch
    assert out.name == OUTPUT_NAME
    assert out.shape[1:] == [128]


def test_cache_is_reused(dat_path: Path, onnx_path: Path) -> None:
    digest = hashlib.sha256(dat_path.read_bytes()).hexdigest()[:16]
    assert digest in onnx_path.name
    before = onnx_path.stat().st_mtime_ns
    assert ensure_resnet_onnx(dat_path, onnx_path.parent) == onnx_path
    assert onnx_path.stat().st_mtime_ns == before
    assert [p.name for p in onnx_path.parent.iterdir()] == [onnx_path.name]  # no temp files left


def test_cache_name_follows_source_content(dat_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / dat_path.name
    shutil.copyfile(dat_path, copy)
    assert cached_model_name(copy) == cached_model_name(dat_path)
    with copy.open("r+b") as stream:
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 0xFF]))
    assert cached_model_name(copy) != cached_model_name(dat_path)
