"""Spoof features, metrics and the PyTorch-free weight reader: no data folder, no detector."""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from facegate.engine.spoof import mobilenet
from facegate.engine.spoof.features import (
    LBP_BINS,
    FeatureConfig,
    LbpFeatures,
    face_crop,
    lbp_histograms,
    log_spectrum,
)
from facegate.engine.types import DetectedFace
from facegate.spoof.metrics import auc, pad_figures
from facegate.spoof.torch_pth import load_state_dict
from tests.factories import grace_hopper_rgb


def _face(box: tuple[float, float, float, float]) -> DetectedFace:
    return DetectedFace(box, 0.99, np.zeros((5, 2), np.float32))


# Crops -------------------------------------------------------------------------------------
def test_crop_is_square_and_centred_on_the_box() -> None:
    rgb = np.zeros((100, 200, 3), np.uint8)
    rgb[40:60, 90:110] = 255  # a white square: the "face"
    crop = face_crop(rgb, (90, 40, 110, 60), 1.0, 20)
    assert crop.shape == (20, 20, 3)
    assert crop.min() == 255


def test_crop_beyond_the_image_repeats_the_edge_instead_of_adding_black() -> None:
    rgb = np.full((50, 50, 3), 200, np.uint8)
    crop = face_crop(rgb, (0, 0, 20, 20), 4.0, 32)
    assert crop.shape == (32, 32, 3)
    assert crop.min() == 200


def test_crop_of_a_box_wholly_outside_still_has_the_requested_size() -> None:
    rgb = np.full((30, 30, 3), 7, np.uint8)
    crop = face_crop(rgb, (100, 100, 120, 120), 1.0, 16)
    assert crop.shape == (16, 16, 3)
    assert (crop == 7).all()


# Colour LBP --------------------------------------------------------------------------------
def test_lbp_histograms_are_normalised_per_channel() -> None:
    channels = np.random.default_rng(0).integers(0, 256, (32, 32, 6), dtype=np.uint8)
    histogram = lbp_histograms(channels, 1)
    assert histogram.shape == (6 * LBP_BINS,)
    assert np.allclose(histogram.reshape(6, LBP_BINS).sum(axis=1), 1.0)


def test_flat_image_has_a_single_uniform_pattern() -> None:
    flat = np.full((16, 16, 1), 100, np.uint8)
    histogram = lbp_histograms(flat, 2)
    # Every neighbour >= centre: code 255, one uniform pattern, all the mass in one bin.
    assert histogram.max() == pytest.approx(1.0)


def test_stripes_put_energy_at_their_frequency() -> None:
    x = np.arange(64)
    fine = np.tile(((np.sin(x * np.pi / 2) + 1) * 127).astype(np.uint8), (64, 1))
    fine_rgb = np.repeat(fine[:, :, None], 3, axis=2)
    smooth = np.tile(((np.sin(x * np.pi / 32) + 1) * 127).astype(np.uint8), (64, 1))
    smooth_rgb = np.repeat(smooth[:, :, None], 3, axis=2)
    bins = 8
    # A period of 4 px is half the Nyquist frequency: bin 4 of 8.
    assert log_spectrum(fine_rgb, bins)[4] > log_spectrum(smooth_rgb, bins)[4]


def test_lbp_features_have_the_configured_length() -> None:
    config = FeatureConfig(
        kind="lbp", scales=(1.0, 2.0), size=32, lbp_radii=(1, 2), spectrum_bins=8
    )
    vector = LbpFeatures(config)(grace_hopper_rgb(), _face((166, 105, 347, 337)))
    assert vector.shape == (config.length,)
    assert np.isfinite(vector).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scales": ()},
        {"scales": (0.0,)},
        {"size": 8},
        {"taps": (19,)},
        {"kind": "hog"},
        {"kind": "lbp", "lbp_radii": (40,), "size": 64},
    ],
)
def test_feature_config_refuses_impossible_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FeatureConfig(**kwargs)  # type: ignore[arg-type]


# Metrics -----------------------------------------------------------------------------------
def test_pad_figures_count_accepted_attacks_and_rejected_live_faces() -> None:
    fake = np.array([True, True, True, True, False, False])
    scores = np.array([0.9, 0.8, 0.6, 0.2, 0.1, 0.7])
    figures = pad_figures(scores, fake)
    assert figures.apcer == pytest.approx(0.25)  # one attack in four passed as live
    assert figures.bpcer == pytest.approx(0.5)  # one live face in two called fake
    assert figures.acer == pytest.approx(0.375)
    assert figures.auc == pytest.approx(6 / 8)


def test_auc_counts_ties_as_half() -> None:
    assert auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)
    assert auc(np.array([0.9, 0.1]), np.array([True, False])) == pytest.approx(1.0)


def test_pad_figures_need_one_label_per_score() -> None:
    with pytest.raises(ValueError, match="one score per label"):
        pad_figures(np.zeros(3), np.zeros(2, bool))


# The PyTorch-free reader -------------------------------------------------------------------
def _fake_torch(monkeypatch: pytest.MonkeyPatch) -> tuple[type, object]:
    """Stand-ins named like torch's storage class and rebuild function, so that pickle writes
    the same global references a real ``torch.save`` does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("never called while writing")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    torch.FloatStorage = FloatStorage  # type: ignore[attr-defined]
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return FloatStorage, _rebuild_tensor_v2


def _write_zip_state_dict(
    path: Path, tensors: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage_class, rebuild = _fake_torch(monkeypatch)

    class Tensor:
        def __init__(self, key: str, array: np.ndarray) -> None:
            self.key, self.array = key, array

        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            strides = tuple(s // 4 for s in self.array.strides)
            return rebuild, (
                StorageRef(self.key, self.array.size),
                0,
                self.array.shape,
                strides,
                False,
                OrderedDict(),
            )

    class StorageRef:
        def __init__(self, key: str, size: int) -> None:
            self.key, self.size = key, size

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if isinstance(obj, StorageRef):
                return ("storage", storage_class, obj.key, "cpu", obj.size)
            return None

    state = OrderedDict((name, Tensor(str(i), a)) for i, (name, a) in enumerate(tensors.items()))
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        for i, array in enumerate(tensors.values()):
            archive.writestr(f"archive/data/{i}", np.ascontiguousarray(array, "<f4").tobytes())


def test_state_dict_round_trips_without_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tensors = {
        "conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
        "bn.bias": np.array([0.5, -1.5], np.float32),
    }
    path = tmp_path / "weights.pth"
    _write_zip_state_dict(path, tensors, monkeypatch)
    loaded = load_state_dict(path)
    assert set(loaded) == set(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, ("echo pwned",)


def test_reader_refuses_pickles_that_name_other_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": _Exploit()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_state_dict(path)


# The backbone graph ------------------------------------------------------------------------
def _random_state(depth: int) -> dict[str, np.ndarray]:
    """A torchvision-shaped MobileNetV2 state_dict up to ``depth``, random weights."""
    rng = np.random.default_rng(1)
    state: dict[str, np.ndarray] = {}

    def conv_bn(conv: str, shape: tuple[int, ...]) -> None:
        state[f"{conv}.weight"] = rng.normal(0, 0.1, shape).astype(np.float32)
        head, last = conv.rsplit(".", 1)
        bn = f"{head}.{int(last) + 1}"
        n = shape[0]
        state[f"{bn}.weight"] = np.ones(n, np.float32)
        state[f"{bn}.bias"] = np.zeros(n, np.float32)
        state[f"{bn}.running_mean"] = np.zeros(n, np.float32)
        state[f"{bn}.running_var"] = np.ones(n, np.float32)

    conv_bn("features.0.0", (32, 3, 3, 3))
    for layer in range(1, depth + 1):
        expansion, out, _ = mobilenet.BLOCKS[layer - 1]
        inp = mobilenet.layer_channels(layer - 1)
        hidden = inp * expansion
        if expansion == 1:
            conv_bn(f"features.{layer}.conv.0.0", (hidden, 1, 3, 3))
            conv_bn(f"features.{layer}.conv.1", (out, hidden, 1, 1))
        else:
            conv_bn(f"features.{layer}.conv.0.0", (hidden, inp, 1, 1))
            conv_bn(f"features.{layer}.conv.1.0", (hidden, 1, 3, 3))
            conv_bn(f"features.{layer}.conv.2", (out, hidden, 1, 1))
    return state


def test_truncated_backbone_outputs_the_tapped_layer_averages() -> None:
    arrays = mobilenet.folded_weights(_random_state(3), 3)
    graph = mobilenet.build_graph(arrays, (1, 3))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = np.random.default_rng(2).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    (pooled,) = session.run(None, {"image": batch})
    assert pooled.shape == (2, mobilenet.layer_channels(1) + mobilenet.layer_channels(3))
    assert np.isfinite(pooled).all()
