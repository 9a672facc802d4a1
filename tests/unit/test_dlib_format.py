"""Unit tests for the dlib serialization reader, on hand-made byte strings."""

from __future__ import annotations

import math
import struct

import numpy as np
import numpy.typing as npt
import pytest

from facegate.engine.dlib_format import (
    AddPrev,
    ByteReader,
    Conv,
    DlibFormatError,
    FullyConnected,
    Relu,
    TagMarker,
    decode_dlib_floats,
    parse_network_bytes,
)

# --------------------------------------------------------------------------
# A tiny encoder for dlib's format, written from the format description.


def enc_int(value: int) -> bytes:
    magnitude = abs(value)
    body = magnitude.to_bytes(max(1, (magnitude.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def enc_float(value: float, digits: int = 24) -> bytes:
    if math.isnan(value):
        return enc_int(0) + enc_int(32002)
    if math.isinf(value):
        return enc_int(0) + enc_int(32000 if value > 0 else 32001)
    fraction, exponent = math.frexp(value)
    mantissa = int(fraction * (1 << digits))
    exponent -= digits
    # Like dlib, drop whole zero bytes off the mantissa to keep it short.
    while mantissa and mantissa & 0xFF == 0:
        mantissa >>= 8
        exponent += 8
    return enc_int(mantissa) + enc_int(exponent)


def enc_str(text: str) -> bytes:
    return enc_int(len(text)) + text.encode("ascii")


def enc_bool(value: bool) -> bytes:
    return b"1" if value else b"0"


def enc_tensor(values: npt.NDArray[np.float32], version: int = 2) -> bytes:
    shape = values.shape if values.ndim == 4 else (values.size, 1, 1, 1)
    head = enc_int(version) + b"".join(enc_int(d) for d in shape)
    flat = values.ravel().astype(np.float32)
    if version == 2:
        return head + flat.astype("<f4").tobytes()
    return head + b"".join(enc_float(float(v)) for v in flat)


def enc_alias(*shape: int) -> bytes:
    return enc_int(1) + b"".join(enc_int(d) for d in shape)


EMPTY_TENSOR = enc_tensor(np.zeros((0, 0, 0, 0), dtype=np.float32))


# --------------------------------------------------------------------------
# Primitives


@pytest.mark.parametrize(
    "value", [0, 1, -1, 127, 128, 255, 256, -300, 65535, 2**31 - 1, -(2**40), 2**63 - 1]
)
def test_int_round_trip(value: int) -> None:
    reader = ByteReader(enc_int(value) + b"tail")
    assert reader.read_int() == value
    assert reader.remaining == 4


def test_int_encoding_matches_dlib_layout() -> None:
    # Header: low nibble is the byte count, bit 7 the sign; body little endian.
    assert enc_int(0x1280) == b"\x02\x80\x12"
    assert ByteReader(b"\x81\x1c").read_int() == -28


@pytest.mark.parametrize(
    "value",
    [0.0, 1.0, -1.5, 0.04, 0.6, 122.782, 1e-30, -3.4e38, 1.401298464324817e-45, 2.0**-140],
)
def test_float_round_trip(value: float) -> None:
    expected = float(np.float32(value))
    assert ByteReader(enc_float(expected)).read_float() == expected


def test_float_round_trip_double_precision() -> None:
    assert ByteReader(enc_float(0.1, digits=53)).read_float() == 0.1


def test_float_special_values() -> None:
    reader = ByteReader(enc_float(math.inf) + enc_float(-math.inf) + enc_float(math.nan))
    assert reader.read_float() == math.inf
    assert reader.read_float() == -math.inf
    assert math.isnan(reader.read_float())


def test_string_and_bool() -> None:
    reader = ByteReader(enc_str("relu_") + enc_bool(True) + enc_bool(False))
    assert reader.read_string() == "relu_"
    assert reader.read_bool() is True
    assert reader.read_bool() is False
    assert reader.remaining == 0


def test_tensor_version_2_is_raw_float32() -> None:
    values = (np.arange(24).reshape(2, 3, 2, 2) / 7).astype(np.float32)
    out = ByteReader(enc_tensor(values, version=2)).read_tensor()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, values)


def test_tensor_version_1_mixed_encodings() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.05, size=4000).astype(np.float32)
    # Sprinkle in every irregular encoding: zeros, short mantissas, tiny and
    # huge magnitudes (multi-byte exponents), and non-finite values.
    values[::97] = 0.0
    values[5::131] = 1.0
    values[7::113] = -0.25
    values[11] = np.float32(1e-40)  # subnormal
    values[12] = np.float32(3e38)
    values[13] = np.inf
    values[14] = -np.inf
    values[15] = np.nan
    values[-1] = 0.0
    data = enc_tensor(values, version=1) + enc_str("after")
    reader = ByteReader(data)
    out = reader.read_tensor().ravel()
    np.testing.assert_array_equal(out, values)
    assert reader.read_string() == "after"


def test_decode_dlib_floats_reports_end_offset() -> None:
    values = [float(np.float32(v)) for v in (0.5, -2.0, 0.0, 0.123, math.inf)]
    payload = b"".join(enc_float(v) for v in values)
    data = b"xx" + payload + b"yy"
    out, end = decode_dlib_floats(data, 2, len(values))
    assert end == 2 + len(payload)
    np.testing.assert_array_equal(out, np.array(values, dtype=np.float32))


# --------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "data",
    [b"", b"\x03\x01\x02", b"\x00", b"\x0f" + b"\x00" * 15],
    ids=["empty", "short-body", "zero-size", "too-wide"],
)
def test_bad_int_raises(data: bytes) -> None:
    with pytest.raises(DlibFormatError):
        ByteReader(data).read_int()


def test_truncated_string_raises() -> None:
    with pytest.raises(DlibFormatError, match="truncated"):
        ByteReader(enc_int(10) + b"abc").read_string()


def test_bad_bool_raises() -> None:
    with pytest.raises(DlibFormatError):
        ByteReader(b"\x01").read_bool()


@pytest.mark.parametrize("version", [1, 2])
def test_truncated_tensor_raises(version: int) -> None:
    data = enc_tensor(np.ones(10, dtype=np.float32), version=version)
    with pytest.raises(DlibFormatError):
        ByteReader(data[:-1]).read_tensor()


def test_unknown_tensor_version_raises() -> None:
    with pytest.raises(DlibFormatError, match="version"):
        ByteReader(enc_int(7) + enc_int(0) * 4).read_tensor()


def test_error_is_value_error() -> None:
    assert issubclass(DlibFormatError, ValueError)


# --------------------------------------------------------------------------
# Network files


def _layer_tail(on_input: bool) -> bytes:
    tail = enc_bool(True) + enc_bool(True) + enc_bool(False) + EMPTY_TENSOR * 3
    return tail + (enc_int(1) if on_input else b"")


def tiny_network(rng: np.random.Generator) -> tuple[bytes, dict[str, npt.NDArray[np.float32]]]:
    """fc<add_prev<relu<con<tag<con<input>>>>>>, written the way dlib does it."""
    conv1_w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    conv1_b = rng.normal(size=4).astype(np.float32)
    # Stride 2 and more channels: add_prev must zero-extend the 1x1 branch.
    conv2_w = rng.normal(size=(6, 4, 3, 3)).astype(np.float32)
    conv2_b = rng.normal(size=6).astype(np.float32)
    fc_w = rng.normal(size=(6 * 4 * 4, 5)).astype(np.float32)

    def conv(weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32], stride: int) -> bytes:
        out_ch, in_ch, kr, kc = weights.shape
        pad = 0 if stride != 1 else kr // 2
        return (
            enc_str("con_4")
            + enc_tensor(np.concatenate([weights.ravel(), bias]))
            + b"".join(enc_int(v) for v in (out_ch, kr, kc, stride, stride, pad, pad))
            + enc_alias(out_ch, in_ch, kr, kc)
            + enc_alias(1, out_ch, 1, 1)
            + b"".join(enc_float(v) for v in (1.0, 1.0, 1.0, 0.0))
        )

    fc = (
        enc_str("fc_2")
        + enc_int(5)
        + enc_int(96)
        + enc_tensor(fc_w)
        + enc_alias(96, 5, 1, 1)
        + enc_alias(0, 0, 0, 0)
        + enc_int(1)  # FC_NO_BIAS
        + b"".join(enc_float(v) for v in (1.0, 1.0, 1.0, 0.0))
    )
    data = (
        enc_int(1)
        + enc_str("loss_metric_2")
        + enc_float(0.04)
        + enc_float(0.6)
        # versions, top-down: fc, add_prev, relu, con, tag, con-on-input
        + b"".join(enc_int(v) for v in (2, 2, 2, 2, 1, 3))
        + enc_str("input_rgb_image_sized")
        + b"".join(enc_float(v) for v in (122.5, 117.0, 104.25))
        + enc_int(9)
        + enc_int(9)
        # details, bottom-up
        + conv(conv1_w, conv1_b, 2)
        + _layer_tail(on_input=True)
        + conv(conv2_w, conv2_b, 2)
        + _layer_tail(on_input=False)
        + enc_str("relu_")
        + _layer_tail(on_input=False)
        + enc_str("add_prev_")
        + _layer_tail(on_input=False)
        + fc
        + _layer_tail(on_input=False)
    )
    weights = {"conv1_w": conv1_w, "conv1_b": conv1_b, "conv2_w": conv2_w, "fc_w": fc_w}
    return data, weights


def test_parse_tiny_network() -> None:
    data, weights = tiny_network(np.random.default_rng(1))
    net = parse_network_bytes(data)
    assert net.loss.margin == pytest.approx(0.04)
    assert net.loss.distance_threshold == pytest.approx(0.6)
    assert (net.input_layer.nr, net.input_layer.nc) == (9, 9)
    assert net.input_layer.avg_red == 122.5
    kinds = [type(layer) for layer in net.layers]
    assert kinds == [FullyConnected, AddPrev, Relu, Conv, TagMarker, Conv]
    bottom_conv = net.layers[-1]
    assert isinstance(bottom_conv, Conv)
    np.testing.assert_array_equal(bottom_conv.filters, weights["conv1_w"])
    np.testing.assert_array_equal(bottom_conv.biases, weights["conv1_b"])
    assert (bottom_conv.stride_y, bottom_conv.padding_y) == (2, 0)
    top_conv = net.layers[3]
    assert isinstance(top_conv, Conv)
    assert top_conv.filters.shape == (6, 4, 3, 3)
    fc = net.layers[0]
    assert isinstance(fc, FullyConnected)
    assert fc.biases is None
    np.testing.assert_array_equal(fc.weights, weights["fc_w"])


def test_every_truncation_of_a_network_raises() -> None:
    data, _ = tiny_network(np.random.default_rng(2))
    # Every cut in the header, then a stride through the (uniform) weight bytes.
    sizes = [*range(300), *range(300, len(data), 7), len(data) - 1]
    for size in sizes:
        with pytest.raises(DlibFormatError):
            parse_network_bytes(data[:size])


def test_trailing_bytes_raise() -> None:
    data, _ = tiny_network(np.random.default_rng(3))
    with pytest.raises(DlibFormatError, match="trailing"):
        parse_network_bytes(data + b"\x00")


def test_unknown_layer_raises() -> None:
    data, _ = tiny_network(np.random.default_rng(4))
    corrupted = data.replace(enc_str("relu_"), enc_str("gelu_"))
    with pytest.raises(DlibFormatError, match="gelu_"):
        parse_network_bytes(corrupted)


def test_unknown_loss_raises() -> None:
    data = enc_int(1) + enc_str("loss_mmod_") + b"\x00" * 8
    with pytest.raises(DlibFormatError, match="loss"):
        parse_network_bytes(data)


# --------------------------------------------------------------------------
# Conversion of the tiny network (checks tag resolution and shape padding)


def _reference_forward(x: npt.NDArray[np.float64], data: bytes) -> npt.NDArray[np.float64]:
    """Plain numpy evaluation of tiny_network with dlib's semantics."""
    net = parse_network_bytes(data)
    fc, _, _, conv2, _, conv1 = net.layers
    assert isinstance(conv1, Conv) and isinstance(conv2, Conv)
    assert isinstance(fc, FullyConnected)
    inp = net.input_layer
    mean = np.array([inp.avg_red, inp.avg_green, inp.avg_blue]).reshape(1, 3, 1, 1)
    tagged = _conv(((x - mean) / 256.0), conv1)  # (n, 4, 4, 4)
    branch = np.maximum(_conv(tagged, conv2), 0.0)  # (n, 6, 1, 1)
    # dlib adds mismatched tensors aligned at index 0, zero elsewhere.
    h = np.zeros((x.shape[0], 6, 4, 4))
    h[:, :4] += tagged
    h[:, :, :1, :1] += branch
    return h.reshape(h.shape[0], -1) @ fc.weights.astype(np.float64)


def _conv(x: npt.NDArray[np.float64], conv: Conv) -> npt.NDArray[np.float64]:
    w = conv.filters.astype(np.float64)
    kr, kc = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (conv.padding_y,) * 2, (conv.padding_x,) * 2))
    rows = (xp.shape[2] - kr) // conv.stride_y + 1
    cols = (xp.shape[3] - kc) // conv.stride_x + 1
    out = np.zeros((x.shape[0], w.shape[0], rows, cols))
    for r in range(rows):
        for c in range(cols):
            patch = xp[
                :,
                :,
                r * conv.stride_y : r * conv.stride_y + kr,
                c * conv.stride_x : c * conv.stride_x + kc,
            ]
            out[:, :, r, c] = np.einsum("nkij,fkij->nf", patch, w)
    return out + conv.biases.astype(np.float64).reshape(1, -1, 1, 1)


def test_tiny_network_converts_to_onnx() -> None:
    ort = pytest.importorskip("onnxruntime")
    from facegate.engine.resnet_onnx import INPUT_NAME, network_to_onnx

    data, _ = tiny_network(np.random.default_rng(5))
    model = network_to_onnx(parse_network_bytes(data))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).uniform(0, 255, size=(2, 3, 9, 9)).astype(np.float32)
    (out,) = session.run(None, {INPUT_NAME: x})
    np.testing.assert_allclose(
        out, _reference_forward(x.astype(np.float64), data), rtol=1e-4, atol=1e-4
    )


def test_raw_float32_layout_is_little_endian() -> None:
    # Guards the assumption behind np.frombuffer("<f4").
    data = enc_int(2) + enc_int(1) * 4 + struct.pack("<f", 1.5)
    assert ByteReader(data).read_tensor().item() == 1.5
