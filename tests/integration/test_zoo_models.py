"""OpenCV Zoo's YuNet and SFace as facegate runs them: the installed files, checked by SHA-256,
dequantised for ONNX Runtime, give OpenCV's own outputs on the original files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from facegate.config import Settings
from facegate.engine import align
from facegate.engine.engine import FaceEngine
from facegate.engine.models import cpu_session
from facegate.engine.zoo import REGISTRY
from facegate.engine.zoo_onnx import (
    dequantize_weights,
    free_batch,
    free_spatial_input,
    rewrite_prelu,
)
from tests.factories import grace_hopper_rgb, group_photo_rgb

pytestmark = pytest.mark.integration


def _opencv_outputs(path: Path, feed: np.ndarray, names: list[str], input_name: str) -> list:
    net = cv2.dnn.readNet(str(path))
    net.setInput(feed, input_name)
    return list(net.forward(names))


def test_the_installed_files_are_the_pinned_ones() -> None:
    for name in ("yunet", "sface"):
        path = REGISTRY[name].file()  # raises ModelCorrupt on any other bytes
        assert path.name.endswith("_int8bq.onnx")


def test_yunet_dequantised_gives_opencvs_outputs() -> None:
    source = REGISTRY["yunet"].file()
    original = onnx.load(str(source))
    converted = free_spatial_input(dequantize_weights(original))
    session = cpu_session(converted.SerializeToString(), 1)
    bgr = cv2.resize(group_photo_rgb()[:, :, ::-1], (640, 640))
    feed = np.ascontiguousarray(bgr.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
    names = [output.name for output in original.graph.output]
    ours = session.run(names, {"input": feed})
    theirs = _opencv_outputs(source, feed, names, "input")
    for name, a, b in zip(names, ours, theirs, strict=True):
        assert a.shape == b.shape, name
        assert np.abs(a - b).max() < 1e-4, name
    # The free input size: a 480x640 image runs without the 640x640 padding.
    smaller = np.ascontiguousarray(feed[:, :, :480], dtype=np.float32)
    assert session.run(["cls_8"], {"input": smaller})[0].shape == (1, 60 * 80, 1)


def test_sface_dequantised_with_prelu_rewritten_gives_opencvs_descriptor() -> None:
    source = REGISTRY["sface"].file()
    original = onnx.load(str(source))
    plain = free_batch(dequantize_weights(original))
    rewritten = rewrite_prelu(plain)
    assert not any(node.op_type == "PRelu" for node in rewritten.graph.node)
    assert not any(node.op_type == "DequantizeLinear" for node in rewritten.graph.node)
    assert [i.name for i in rewritten.graph.input] == ["data"]  # the leftover inputs are gone
    engine = FaceEngine(Settings())
    image = engine.decode(cv2.imencode(".png", grace_hopper_rgb()[:, :, ::-1])[1].tobytes())
    face = engine.detect(image)[0]
    chip = align.arcface_chips(image.rgb, face.points)[0]
    feed = np.ascontiguousarray(chip.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)
    theirs = _opencv_outputs(source, feed, ["fc1"], "data")[0]
    for model in (plain, rewritten):
        ours = cpu_session(model.SerializeToString(), 1).run(None, {"data": feed})[0]
        assert np.abs(ours - theirs).max() < 1e-4
    batch = np.concatenate([feed, feed[:, :, :, ::-1]])
    out = cpu_session(rewritten.SerializeToString(), 1).run(None, {"data": batch})[0]
    assert out.shape == (2, 128)


def test_conversions_are_cached_in_the_data_folder(tmp_path: Path) -> None:
    engine = FaceEngine(Settings(data_dir=tmp_path))
    engine.warm_up()
    cached = sorted(p.name for p in (tmp_path / "models").glob("*.onnx"))
    assert [n.split(".")[0] for n in cached] == ["sface", "yunet"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "models").glob("*.onnx")}
    FaceEngine(Settings(data_dir=tmp_path)).warm_up()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # read, not rebuilt
