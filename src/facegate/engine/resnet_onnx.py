"""Convert dlib's face-descriptor ResNet into an ONNX graph.

Approach
--------
:mod:`facegate.engine.dlib_format` parses ``dlib_face_recognition_resnet_model_v1.dat``
into a top-down list of layers.  This module walks that list bottom-up (the
order in which dlib evaluates it) and emits one ONNX node group per layer,
tracking the static ``(channels, rows, cols)`` shape as it goes, because
dlib's residual additions need it (see below).  The weights become graph
initializers; the result is a self-contained model that onnxruntime can run
without dlib.

Details that matter for parity with dlib:

* Input: ``input_rgb_image_sized`` computes ``(pixel - channel_mean) / 256``
  with the means stored in the file; the graph takes raw 0..255 RGB values
  (NCHW) and does this itself.
* ``affine_`` layers (dlib's inference-time batch norm) that directly follow
  a convolution are folded into its weights and bias.
* dlib convolutions/pools with stride 2 default to *zero* padding, so
  feature maps shrink 150 -> 72 -> 35 -> 17 -> 8 -> 4 -> 2.  The padding is
  read from the file, not assumed.
* Tag and skip layers are written to the file as a bare version number, with
  no type or id.  The network follows dlib's ResNet examples::

      residual      = add_prev1<block<tag1<x>>>
      residual_down = add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<tag1<x>>>>>>

  so, reading top-down, a lone marker is ``tag1`` and a pair of markers is
  ``skip1`` over ``tag2``.  An ``add_prev`` adds the output of the nearest tag
  below it; a ``skip1`` forwards the output of the nearest ``tag1``.
* ``add_prev`` tolerates operands of different shapes: the sum has the
  larger size along every axis and each operand is added into the top-left
  corner (zero elsewhere).  This happens in the downsampling blocks, where
  the 2x2/stride-2 average-pooled shortcut can be one pixel larger than the
  stride-2 3x3 convolution branch (8x8 input: 4x4 vs 3x3) and has fewer
  channels.  It is reproduced with ``Pad`` nodes.
* ``avg_pool`` with a 0x0 window is global average pooling; ``fc_`` flattens
  its input and multiplies by an (inputs x outputs) matrix.  ``loss_metric``
  passes the 128-d output through unchanged (no normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from onnx import TensorProto, helper

from facegate.engine.dlib_format import (
    AddPrev,
    Affine,
    Conv,
    DlibFormatError,
    DlibNetwork,
    FullyConnected,
    InputRGBImageSized,
    Layer,
    Pool,
    Relu,
    TagMarker,
    parse_network,
)
from facegate.engine.onnx_graph import GraphBuilder
from facegate.engine.registry import atomic_write, file_sha256

__all__ = [
    "CONVERTER_VERSION",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "build_resnet_onnx",
    "cached_model_name",
    "ensure_resnet_onnx",
    "network_to_onnx",
]

INPUT_NAME: Final = "chips"
OUTPUT_NAME: Final = "descriptors"
# Bump when the emitted graph changes so that cached models get rebuilt.
CONVERTER_VERSION: Final = 1
_OPSET: Final = 17
# Widely supported IR version (onnxruntime >= 1.10).
_IR_VERSION: Final = 8


@dataclass(frozen=True)
class _Tag:
    tag_id: int


@dataclass(frozen=True)
class _Skip:
    tag_id: int


_Resolved = Layer | _Tag | _Skip


@dataclass
class _Value:
    name: str
    shape: tuple[int, int, int]  # (channels, rows, cols); batch is dynamic


# --------------------------------------------------------------------------
# Public API


def build_resnet_onnx(dat_path: Path) -> onnx.ModelProto:
    """Parse dlib's ResNet model file and return an equivalent ONNX model.

    Input ``chips``: float32 [N, 3, 150, 150], raw RGB 0..255, NCHW.
    Output ``descriptors``: float32 [N, 128].
    """
    return network_to_onnx(parse_network(Path(dat_path)))


def ensure_resnet_onnx(dat_path: Path, cache_dir: Path) -> Path:
    """Return the cached ONNX conversion of ``dat_path``, building it if needed.

    The file name embeds the SHA-256 of the source, so a changed ``.dat`` gets
    a fresh conversion.  The model is written to a temporary file in
    ``cache_dir`` and moved into place with :func:`os.replace`, so concurrent
    callers never observe a partial file (at worst both build it).
    """
    dat_path = Path(dat_path)
    cache_dir = Path(cache_dir)
    target = cache_dir / cached_model_name(dat_path)
    if target.is_file():
        return target
    model = build_resnet_onnx(dat_path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(target, model.SerializeToString())
    return target


def cached_model_name(dat_path: Path) -> str:
    digest = file_sha256(Path(dat_path))[:16]
    return f"{Path(dat_path).stem}.{digest}.c{CONVERTER_VERSION}.onnx"


def network_to_onnx(network: DlibNetwork) -> onnx.ModelProto:
    """Translate a parsed dlib network into an ONNX model."""
    builder = GraphBuilder()
    value = _emit_input(builder, network.input_layer)
    bottom_up = list(reversed(_resolve_markers(network.layers)))
    value = _emit_layers(builder, bottom_up, value)
    if value.shape[1:] != (1, 1):
        raise DlibFormatError(f"network output is not a vector: shape {value.shape}")
    output_dim = value.shape[0]
    builder.nodes[-1].output[0] = OUTPUT_NAME
    batch = "N"
    return builder.model(
        "dlib_face_recognition_resnet",
        [
            helper.make_tensor_value_info(
                INPUT_NAME,
                TensorProto.FLOAT,
                [batch, 3, network.input_layer.nr, network.input_layer.nc],
            )
        ],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, output_dim])],
        opset=_OPSET,
        ir_version=_IR_VERSION,
        producer_name="facegate.dlib_resnet_onnx",
        producer_version=str(CONVERTER_VERSION),
    )


# --------------------------------------------------------------------------
# Topology


def _resolve_markers(layers: Sequence[Layer]) -> list[_Resolved]:
    """Replace anonymous tag/skip markers (top-down list) with tags and skips."""
    resolved: list[_Resolved] = []
    i = 0
    while i < len(layers):
        if not isinstance(layers[i], TagMarker):
            resolved.append(layers[i])
            i += 1
            continue
        run = 1
        while i + run < len(layers) and isinstance(layers[i + run], TagMarker):
            run += 1
        if run == 1:
            resolved.append(_Tag(1))
        elif run == 2:
            resolved.extend((_Skip(1), _Tag(2)))
        else:
            raise DlibFormatError(f"unsupported run of {run} tag/skip layers")
        i += run
    return resolved


# --------------------------------------------------------------------------
# Node emission


def _emit_input(builder: GraphBuilder, layer: InputRGBImageSized) -> _Value:
    means = np.array([layer.avg_red, layer.avg_green, layer.avg_blue], dtype=np.float32)
    centred = builder.op("Sub", [INPUT_NAME, builder.const(means.reshape(1, 3, 1, 1), "rgb_mean")])
    scale = builder.const(np.array(1.0 / 256.0, dtype=np.float32), "rgb_scale")
    return _Value(builder.op("Mul", [centred, scale]), (3, layer.nr, layer.nc))


def _emit_layers(builder: GraphBuilder, bottom_up: Sequence[_Resolved], value: _Value) -> _Value:
    tags: dict[int, _Value] = {}
    last_tag: int | None = None
    i = 0
    while i < len(bottom_up):
        layer = bottom_up[i]
        following = bottom_up[i + 1] if i + 1 < len(bottom_up) else None
        if isinstance(layer, Conv) and isinstance(following, Affine) and following.conv_mode:
            value = _emit_conv(builder, layer, value, following)
            i += 2
            continue
        if isinstance(layer, _Tag):
            tags[layer.tag_id] = value
            last_tag = layer.tag_id
        elif isinstance(layer, _Skip):
            value = _lookup_tag(tags, layer.tag_id)
        elif isinstance(layer, AddPrev):
            if last_tag is None:
                raise DlibFormatError("add_prev_ layer without a tag below it")
            value = _emit_add(builder, value, tags[last_tag])
        else:
            value = _emit_simple(builder, layer, value)
        i += 1
    return value


def _lookup_tag(tags: dict[int, _Value], tag_id: int) -> _Value:
    if tag_id not in tags:
        raise DlibFormatError(f"skip layer refers to missing tag{tag_id}")
    return tags[tag_id]


def _emit_simple(builder: GraphBuilder, layer: _Resolved, value: _Value) -> _Value:
    if isinstance(layer, Conv):
        return _emit_conv(builder, layer, value, None)
    if isinstance(layer, Affine):
        return _emit_affine(builder, layer, value)
    if isinstance(layer, Relu):
        return _Value(builder.op("Relu", [value.name]), value.shape)
    if isinstance(layer, Pool):
        return _emit_pool(builder, layer, value)
    if isinstance(layer, FullyConnected):
        return _emit_fc(builder, layer, value)
    raise DlibFormatError(f"unexpected layer {layer!r}")


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    # dlib and ONNX (floor mode) agree on this formula.
    out = (size + 2 * padding - kernel) // stride + 1
    if out <= 0:
        raise DlibFormatError(f"layer reduces a dimension of {size} to {out}")
    return out


def _emit_conv(builder: GraphBuilder, conv: Conv, value: _Value, affine: Affine | None) -> _Value:
    out_ch, in_ch, kr, kc = conv.filters.shape
    if in_ch != value.shape[0]:
        raise DlibFormatError(f"con_ expects {in_ch} channels, input has {value.shape[0]}")
    weights, bias = conv.filters, conv.biases
    if affine is not None:
        if affine.gamma.size != out_ch:
            raise DlibFormatError(f"affine_ of size {affine.gamma.size} after {out_ch} filters")
        # Fold in float64 so the only rounding is the final cast.
        gamma = affine.gamma.astype(np.float64)
        weights = (weights.astype(np.float64) * gamma[:, None, None, None]).astype(np.float32)
        bias = (bias.astype(np.float64) * gamma + affine.beta).astype(np.float32)
    out = builder.op(
        "Conv",
        [value.name, builder.const(weights, "conv_w"), builder.const(bias, "conv_b")],
        kernel_shape=[kr, kc],
        strides=[conv.stride_y, conv.stride_x],
        pads=[conv.padding_y, conv.padding_x, conv.padding_y, conv.padding_x],
    )
    rows = _out_size(value.shape[1], kr, conv.stride_y, conv.padding_y)
    cols = _out_size(value.shape[2], kc, conv.stride_x, conv.padding_x)
    return _Value(out, (out_ch, rows, cols))


def _emit_affine(builder: GraphBuilder, affine: Affine, value: _Value) -> _Value:
    channels, rows, cols = value.shape
    shape = (1, channels, 1, 1) if affine.conv_mode else (1, channels, rows, cols)
    if affine.gamma.size != int(np.prod(shape)):
        raise DlibFormatError(f"affine_ of size {affine.gamma.size} for input {value.shape}")
    scaled = builder.op("Mul", [value.name, builder.const(affine.gamma.reshape(shape), "affine_g")])
    shifted = builder.op("Add", [scaled, builder.const(affine.beta.reshape(shape), "affine_b")])
    return _Value(shifted, value.shape)


def _emit_pool(builder: GraphBuilder, pool: Pool, value: _Value) -> _Value:
    channels, rows, cols = value.shape
    if pool.is_global:
        op = "GlobalMaxPool" if pool.kind == "max" else "GlobalAveragePool"
        return _Value(builder.op(op, [value.name]), (channels, 1, 1))
    attrs: dict[str, Any] = {
        "kernel_shape": [pool.nr, pool.nc],
        "strides": [pool.stride_y, pool.stride_x],
        "pads": [pool.padding_y, pool.padding_x, pool.padding_y, pool.padding_x],
    }
    if pool.kind == "avg":
        # dlib averages over the in-bounds window only.
        attrs["count_include_pad"] = 0
    op = "MaxPool" if pool.kind == "max" else "AveragePool"
    out_rows = _out_size(rows, pool.nr, pool.stride_y, pool.padding_y)
    out_cols = _out_size(cols, pool.nc, pool.stride_x, pool.padding_x)
    return _Value(builder.op(op, [value.name], **attrs), (channels, out_rows, out_cols))


def _emit_add(builder: GraphBuilder, a: _Value, b: _Value) -> _Value:
    shape = (
        max(a.shape[0], b.shape[0]),
        max(a.shape[1], b.shape[1]),
        max(a.shape[2], b.shape[2]),
    )
    total = builder.op("Add", [_pad_to(builder, a, shape), _pad_to(builder, b, shape)])
    return _Value(total, shape)


def _pad_to(builder: GraphBuilder, value: _Value, shape: tuple[int, int, int]) -> str:
    extra = [target - have for target, have in zip(shape, value.shape, strict=True)]
    if not any(extra):
        return value.name
    # Zero-extend at the end of each axis: dlib aligns operands at index 0.
    pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return builder.op("Pad", [value.name, builder.const(pads, "pads")], mode="constant")


def _emit_fc(builder: GraphBuilder, fc: FullyConnected, value: _Value) -> _Value:
    num_inputs, num_outputs = fc.weights.shape
    if num_inputs != int(np.prod(value.shape)):
        raise DlibFormatError(f"fc_ expects {num_inputs} inputs, got shape {value.shape}")
    flat = builder.op("Flatten", [value.name], axis=1)
    out = builder.op("MatMul", [flat, builder.const(fc.weights, "fc_w")])
    if fc.biases is not None:
        out = builder.op("Add", [out, builder.const(fc.biases.reshape(1, -1), "fc_b")])
    return _Value(out, (num_outputs, 1, 1))
