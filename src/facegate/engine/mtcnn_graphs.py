"""MTCNN's three networks as ONNX graphs, built from the weights the ``mtcnn`` package ships.

The package stores Keras layer weights as joblib+lz4 lists (no TensorFlow is needed to read them).
Keras keeps tensors as NHWC and kernels as HWIO; the graphs here are NCHW, so kernels become OIHW,
PReLU slopes become (C, 1, 1), and the ``Permute((2, 1, 3))`` + ``Flatten`` in front of the dense
layers becomes a transpose to (N, W, H, C) before flattening so the dense weights apply unchanged.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper

from facegate.engine.onnx_graph import GraphBuilder
from facegate.errors import ModelMissing

OPSET = 17


class KerasGraph(GraphBuilder):
    """Keras layers (NHWC weights) written as NCHW ONNX nodes. ``onnx_prelu`` writes ONNX's own
    PRelu node: the reference the faster form is checked and measured against (tests,
    ``facegate bench --detector``)."""

    def __init__(self, name: str, onnx_prelu: bool = False) -> None:
        super().__init__()
        self.name = name
        self.onnx_prelu = onnx_prelu

    def conv(self, x: str, kernel_hwio: NDArray[np.float32], bias: NDArray[np.float32]) -> str:
        kernel = np.transpose(kernel_hwio, (3, 2, 0, 1)).astype(np.float32)
        return self.op(
            "Conv",
            [x, self.const(kernel), self.const(bias.astype(np.float32))],
            kernel_shape=list(kernel.shape[2:]),
        )

    def prelu(self, x: str, alpha: NDArray[np.float32], spatial: bool = True) -> str:
        """PReLU as relu(x) - a * relu(-x), which is bit-identical to ONNX's PRelu.

        ONNX Runtime runs PRelu outside its blocked (NCHWc) convolution layout, paying two
        layout reorders per use; on MTCNN that made PReLU cost as much as the convolutions.
        On feature maps the negation and the per-channel slope are written as 1x1 depthwise
        convolutions, which stay in the blocked layout and absorb the Relu and the Add
        (tests/unit/test_mtcnn_graphs.py checks the outputs are identical; speed in
        BENCHMARKS.md).
        """
        slope = alpha.reshape(-1).astype(np.float32)
        if self.onnx_prelu:
            return self.op("PRelu", [x, self.const(slope.reshape(-1, 1, 1) if spatial else slope)])
        positive = self.op("Relu", [x])
        if not spatial:
            negative = self.op("Relu", [self.op("Neg", [x])])
            return self.op("Add", [positive, self.op("Mul", [negative, self.const(-slope)])])
        negative = self.op("Relu", [self._depthwise_scale(x, np.full_like(slope, -1.0))])
        return self.op("Add", [self._depthwise_scale(negative, -slope), positive])

    def _depthwise_scale(self, x: str, factors: NDArray[np.float32]) -> str:
        """Each channel multiplied by its factor, as a 1x1 depthwise convolution."""
        channels = factors.size
        return self.op(
            "Conv",
            [x, self.const(factors.reshape(channels, 1, 1, 1)), self.const(np.zeros_like(factors))],
            group=channels,
            kernel_shape=[1, 1],
        )

    def max_pool(self, x: str, size: int, stride: int, same: bool) -> str:
        # Keras "same" pads at the end only, which is ONNX's SAME_UPPER.
        return self.op(
            "MaxPool",
            [x],
            kernel_shape=[size, size],
            strides=[stride, stride],
            auto_pad="SAME_UPPER" if same else "VALID",
        )

    def dense(self, x: str, weight: NDArray[np.float32], bias: NDArray[np.float32]) -> str:
        y = self.op("MatMul", [x, self.const(weight.astype(np.float32))])
        return self.op("Add", [y, self.const(bias.astype(np.float32))])

    def keras_flatten(self, x: str) -> str:
        return self.op("Flatten", [self.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)

    def finish(
        self, inputs: list[onnx.ValueInfoProto], outputs: dict[str, str], output_rank: int
    ) -> onnx.ModelProto:
        """The model, with each internal value in ``outputs`` exposed under its public name."""
        for public, internal in outputs.items():
            self.op("Identity", [internal], public)
        return self.model(
            self.name,
            inputs,
            [
                helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * output_rank)
                for name in outputs
            ],
            opset=OPSET,
        )


def load_weights(name: str) -> list[NDArray[np.float32]]:
    """The Keras weight list of ``pnet``, ``rnet`` or ``onet`` from the mtcnn package's assets."""
    weights = joblib.load(weights_dir() / f"{name}.lz4")
    return [np.asarray(w, dtype=np.float32) for w in weights]


def weights_dir() -> Path:
    # find_spec locates the package without importing it: its __init__ imports TensorFlow.
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing("the 'mtcnn' package (MTCNN weights) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


def _image_input(height: int | str, width: int | str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, height, width])


def build_pnet(onnx_prelu: bool = False) -> onnx.ModelProto:
    w: Iterator[NDArray[np.float32]] = iter(load_weights("pnet"))
    g = KerasGraph("pnet", onnx_prelu)
    x = g.prelu(g.conv("image", next(w), next(w)), next(w))
    x = g.max_pool(x, 2, 2, same=True)
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    regression = g.conv(x, next(w), next(w))
    probability = g.op("Softmax", [g.conv(x, next(w), next(w))], axis=1)
    return g.finish(
        [_image_input("H", "W")], {"regression": regression, "probability": probability}, 4
    )


def build_rnet(onnx_prelu: bool = False) -> onnx.ModelProto:
    w = iter(load_weights("rnet"))
    g = KerasGraph("rnet", onnx_prelu)
    x = g.prelu(g.conv("image", next(w), next(w)), next(w))
    x = g.max_pool(x, 3, 2, same=True)
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    x = g.max_pool(x, 3, 2, same=False)
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    x = g.prelu(g.dense(g.keras_flatten(x), next(w), next(w)), next(w), spatial=False)
    regression = g.dense(x, next(w), next(w))
    probability = g.op("Softmax", [g.dense(x, next(w), next(w))], axis=1)
    return g.finish(
        [_image_input(24, 24)], {"regression": regression, "probability": probability}, 2
    )


def build_onet(onnx_prelu: bool = False) -> onnx.ModelProto:
    w = iter(load_weights("onet"))
    g = KerasGraph("onet", onnx_prelu)
    x = g.prelu(g.conv("image", next(w), next(w)), next(w))
    x = g.max_pool(x, 3, 2, same=True)
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    x = g.max_pool(x, 3, 2, same=False)
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    x = g.max_pool(x, 2, 2, same=True)
    x = g.prelu(g.conv(x, next(w), next(w)), next(w))
    x = g.prelu(g.dense(g.keras_flatten(x), next(w), next(w)), next(w), spatial=False)
    regression = g.dense(x, next(w), next(w))
    points = g.dense(x, next(w), next(w))
    probability = g.op("Softmax", [g.dense(x, next(w), next(w))], axis=1)
    return g.finish(
        [_image_input(48, 48)],
        {"regression": regression, "points": points, "probability": probability},
        2,
    )
