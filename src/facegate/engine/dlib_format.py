"""Reader for dlib's binary serialization format and its DNN model files.

Only the subset needed for dlib's face recognition ResNet
(``dlib_face_recognition_resnet_model_v1.dat``) is supported; anything else
raises :class:`DlibFormatError` instead of being guessed at.

Primitive encodings (dlib ``serialize.h``):

* integers: one header byte (low nibble = number of magnitude bytes, bit 7 =
  negative) followed by the magnitude, little endian;
* ``bool``: the ASCII character ``'0'`` or ``'1'``;
* strings: an integer length followed by the raw bytes;
* ``float``/``double``: two integers, mantissa and exponent, with
  ``value = mantissa * 2**exponent`` (exponents 32000/32001/32002 encode
  +inf/-inf/NaN);
* tensors: integer version, then ``num_samples, k, nr, nc``; version 1 stores
  every value as a dlib float (see above), version 2 as raw little-endian
  IEEE float32.

Network layout: the loss layer writes its version, its own details and then
the sub-network.  Every ``add_layer`` writes its version, *recurses into its
sub-network first* and only then writes its layer details plus bookkeeping
(flags and empty scratch tensors).  Tag and skip layers write nothing but a
version.  The file therefore holds all versions top-down, then the input
layer, then the layer details bottom-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float32]

__all__ = [
    "AddPrev",
    "Affine",
    "ByteReader",
    "Conv",
    "DlibFormatError",
    "DlibNetwork",
    "FloatArray",
    "FullyConnected",
    "InputRGBImageSized",
    "Layer",
    "LossMetric",
    "Pool",
    "Relu",
    "TagMarker",
    "decode_dlib_floats",
    "parse_network",
    "parse_network_bytes",
]

# float_details reserves these exponents for non-finite values.
_EXP_INF: Final = 32000
_EXP_NINF: Final = 32001
_EXP_NAN: Final = 32002

# dlib refuses integers wider than their C++ type; int64 and int16 are the
# types used for a float's mantissa and exponent.
_MAX_INT_BYTES: Final = 8
_MAX_MANTISSA_BYTES: Final = 8
_MAX_EXPONENT_BYTES: Final = 2

# add_layer versions: 2 when stacked on another layer, 3 when stacked directly
# on the input layer.  Tag/skip layers only ever write version 1.
_MARKER_VERSION: Final = 1
_ADD_LAYER_VERSION: Final = 2
_ADD_LAYER_ON_INPUT_VERSION: Final = 3

# Layer-mode enum of dlib's affine_/bn_ layers.
_AFFINE_CONV_MODE: Final = 0
_AFFINE_FC_MODE: Final = 1
# Bias-mode enum of dlib's fc_ layer.
_FC_HAS_BIAS: Final = 0
_FC_NO_BIAS: Final = 1


class DlibFormatError(ValueError):
    """The data is truncated, corrupt, or uses an unsupported dlib feature."""


# --------------------------------------------------------------------------
# Layer descriptions


@dataclass(frozen=True)
class LossMetric:
    """``loss_metric_`` details; the network output is used as-is."""

    margin: float
    distance_threshold: float


@dataclass(frozen=True)
class InputRGBImageSized:
    """``input_rgb_image_sized``: value = (pixel - channel mean) / 256."""

    avg_red: float
    avg_green: float
    avg_blue: float
    nr: int
    nc: int


@dataclass(frozen=True, eq=False)
class Conv:
    """``con_``: cross-correlation, filters laid out (out, in, rows, cols)."""

    filters: FloatArray
    biases: FloatArray
    stride_y: int
    stride_x: int
    padding_y: int
    padding_x: int


@dataclass(frozen=True, eq=False)
class Affine:
    """``affine_``: ``y = gamma * x + beta`` (per channel in conv mode)."""

    gamma: FloatArray
    beta: FloatArray
    conv_mode: bool


@dataclass(frozen=True)
class Relu:
    """``relu_``."""


@dataclass(frozen=True)
class AddPrev:
    """``add_prev_``: adds the output of a tagged layer (tag id not stored)."""


@dataclass(frozen=True)
class Pool:
    """``max_pool_``/``avg_pool_``; a 0x0 window means the whole input."""

    kind: str  # "max" or "avg"
    nr: int
    nc: int
    stride_y: int
    stride_x: int
    padding_y: int
    padding_x: int

    @property
    def is_global(self) -> bool:
        return self.nr == 0 and self.nc == 0


@dataclass(frozen=True, eq=False)
class FullyConnected:
    """``fc_``: ``y = flatten(x) @ weights (+ biases)``; weights are (in, out)."""

    weights: FloatArray
    biases: FloatArray | None


@dataclass(frozen=True)
class TagMarker:
    """A tag or skip layer; the file records neither which one nor its id."""


Layer: TypeAlias = Conv | Affine | Relu | AddPrev | Pool | FullyConnected | TagMarker


@dataclass(frozen=True)
class DlibNetwork:
    """A parsed network; ``layers`` run top-down (just below the loss first)."""

    loss: LossMetric
    layers: tuple[Layer, ...]
    input_layer: InputRGBImageSized


# --------------------------------------------------------------------------
# Primitive reader


class ByteReader:
    """Sequential reader of dlib-serialized primitives over an in-memory buffer."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self._data = data
        self._pos = pos

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def _take(self, size: int, what: str) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise DlibFormatError(
                f"truncated data: need {size} byte(s) for {what} at offset "
                f"{self._pos}, only {self.remaining} left"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def read_int(self, max_bytes: int = _MAX_INT_BYTES, what: str = "integer") -> int:
        header = self._take(1, what)[0]
        size = header & 0x0F
        if size == 0 or size > max_bytes:
            raise DlibFormatError(f"invalid {what} header 0x{header:02x} at offset {self._pos - 1}")
        magnitude = int.from_bytes(self._take(size, what), "little")
        return -magnitude if header & 0x80 else magnitude

    def read_bool(self) -> bool:
        char = self._take(1, "bool")
        if char not in (b"0", b"1"):
            raise DlibFormatError(f"invalid bool {char!r} at offset {self._pos - 1}")
        return char == b"1"

    def read_float(self) -> float:
        mantissa = self.read_int(_MAX_MANTISSA_BYTES, "float mantissa")
        exponent = self.read_int(_MAX_EXPONENT_BYTES, "float exponent")
        return _float_from_parts(mantissa, exponent)

    def read_string(self) -> str:
        size = self.read_int(what="string length")
        if size < 0:
            raise DlibFormatError(f"negative string length at offset {self._pos}")
        raw = self._take(size, "string")
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DlibFormatError(f"non-ASCII string at offset {self._pos - size}") from exc

    def read_tensor_shape(self) -> tuple[int, int, int, int]:
        num_samples, k, nr, nc = (self.read_int(what="tensor dimension") for _ in range(4))
        if min(num_samples, k, nr, nc) < 0:
            raise DlibFormatError(f"negative tensor dimension at offset {self._pos}")
        return num_samples, k, nr, nc

    def read_tensor(self) -> FloatArray:
        """Read a tensor; returns a float32 array shaped (num_samples, k, nr, nc)."""
        version = self.read_int(what="tensor version")
        shape = self.read_tensor_shape()
        count = math.prod(shape)
        if version == 2:
            raw = self._take(4 * count, "tensor data")
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif version == 1:
            values, self._pos = decode_dlib_floats(self._data, self._pos, count)
        else:
            raise DlibFormatError(f"unsupported tensor version {version}")
        return values.reshape(shape)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        """Read an alias_tensor (a shape only; its offset is implied by the layer)."""
        version = self.read_int(what="alias_tensor version")
        if version != 1:
            raise DlibFormatError(f"unsupported alias_tensor version {version}")
        return self.read_tensor_shape()

    def expect_string(self, expected: str) -> None:
        start = self._pos
        found = self.read_string()
        if found != expected:
            raise DlibFormatError(f"expected {expected!r} at offset {start}, found {found!r}")


def _float_from_parts(mantissa: int, exponent: int) -> float:
    if exponent == _EXP_INF:
        return math.inf
    if exponent == _EXP_NINF:
        return -math.inf
    if exponent == _EXP_NAN:
        return math.nan
    try:
        return math.ldexp(float(mantissa), exponent)
    except OverflowError:
        return math.copysign(math.inf, mantissa)


# --------------------------------------------------------------------------
# Vectorised decoding of dlib-encoded float arrays (tensor version 1)

# The overwhelmingly common encoding of a float32 is a 3-byte mantissa and a
# 1-byte exponent, i.e. 6 bytes: header & 0x0F == 3, then header & 0x0F == 1.
_REGULAR_SIZE: Final = 6


def decode_dlib_floats(data: bytes, pos: int, count: int) -> tuple[FloatArray, int]:
    """Decode ``count`` consecutive dlib floats starting at ``pos``.

    Returns the values and the offset just past them.  Runs of 6-byte floats
    are located and decoded with numpy; only the rare irregular encodings
    (zeros, short mantissas, non-finite values) go through scalar code, so the
    Python-level work is proportional to the number of irregular values.
    """
    if count == 0:
        return np.zeros(0, dtype=np.float32), pos
    window_len = min(len(data) - pos, 12 * count)  # 12 = widest possible float
    if window_len <= 0:
        raise DlibFormatError(f"truncated data: tensor values expected at offset {pos}")
    window = np.frombuffer(data, dtype=np.uint8, count=window_len, offset=pos)
    run_lengths = _regular_run_lengths(window)

    values = np.empty(count, dtype=np.float32)
    is_regular = np.ones(count, dtype=bool)
    run_bases: list[int] = []
    run_sizes: list[int] = []
    cursor = pos
    done = 0
    while done < count:
        rel = cursor - pos
        run = min(int(run_lengths[rel]) if rel < window_len else 0, count - done)
        if run:
            # Value slot s of this run starts at byte base + 6 * s.
            run_bases.append(rel - _REGULAR_SIZE * done)
            run_sizes.append(run)
            done += run
            cursor += _REGULAR_SIZE * run
            continue
        reader = ByteReader(data, cursor)
        values[done] = reader.read_float()
        is_regular[done] = False
        cursor = reader.pos
        done += 1
    if run_bases:
        slots = np.flatnonzero(is_regular)
        starts = np.repeat(np.asarray(run_bases, dtype=np.int64), run_sizes)
        starts += _REGULAR_SIZE * slots
        values[slots] = _decode_regular(window, starts)
    return values, cursor


def _regular_run_lengths(window: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """For each offset, how many 6-byte floats follow back to back from there."""
    size = window.size
    regular = np.zeros(size, dtype=bool)
    if size >= _REGULAR_SIZE:
        last = size - _REGULAR_SIZE + 1
        regular[:last] = ((window[:last] & 0x0F) == 3) & ((window[4 : last + 4] & 0x0F) == 1)
    runs = np.zeros(size, dtype=np.int32)
    for phase in range(_REGULAR_SIZE):
        chain = regular[phase::_REGULAR_SIZE]
        index = np.arange(chain.size, dtype=np.int32)
        # Distance to the next irregular slot in the same 6-byte phase.
        stop = np.where(chain, chain.size, index)
        next_stop = np.minimum.accumulate(stop[::-1])[::-1]
        runs[phase::_REGULAR_SIZE] = next_stop - index
    return runs


def _decode_regular(window: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64]) -> FloatArray:
    def byte(offset: int) -> npt.NDArray[np.int64]:
        return window[starts + offset].astype(np.int64)

    mantissa = byte(1) | (byte(2) << 8) | (byte(3) << 16)
    mantissa = np.where(byte(0) & 0x80, -mantissa, mantissa)
    exponent = np.where(byte(4) & 0x80, -byte(5), byte(5))
    with np.errstate(over="ignore"):
        return np.ldexp(mantissa.astype(np.float64), exponent).astype(np.float32)


# --------------------------------------------------------------------------
# Network parsing


def parse_network(path: Path) -> DlibNetwork:
    """Parse a dlib DNN model file (as written by ``dlib::serialize(net)``)."""
    return parse_network_bytes(Path(path).read_bytes())


def parse_network_bytes(data: bytes) -> DlibNetwork:
    reader = ByteReader(data)
    loss_version = reader.read_int(what="loss layer version")
    if loss_version != 1:
        raise DlibFormatError(f"unsupported loss layer version {loss_version}")
    loss = _read_loss(reader)
    versions = _read_layer_versions(reader)
    input_layer = _read_input_layer(reader)
    bottom_up = [_read_layer(reader, version) for version in reversed(versions)]
    if reader.remaining:
        raise DlibFormatError(
            f"{reader.remaining} unexpected trailing byte(s) at offset {reader.pos}"
        )
    return DlibNetwork(loss=loss, layers=tuple(reversed(bottom_up)), input_layer=input_layer)


def _read_loss(reader: ByteReader) -> LossMetric:
    name = reader.read_string()
    if name != "loss_metric_2":
        raise DlibFormatError(f"unsupported loss layer {name!r}")
    return LossMetric(margin=reader.read_float(), distance_threshold=reader.read_float())


def _read_layer_versions(reader: ByteReader) -> list[int]:
    versions: list[int] = []
    while True:
        version = reader.read_int(what="layer version")
        if version not in (_MARKER_VERSION, _ADD_LAYER_VERSION, _ADD_LAYER_ON_INPUT_VERSION):
            raise DlibFormatError(f"unsupported layer version {version} at offset {reader.pos}")
        versions.append(version)
        if version == _ADD_LAYER_ON_INPUT_VERSION:
            return versions


def _read_input_layer(reader: ByteReader) -> InputRGBImageSized:
    reader.expect_string("input_rgb_image_sized")
    avg_red, avg_green, avg_blue = (reader.read_float() for _ in range(3))
    nr = reader.read_int(what="input rows")
    nc = reader.read_int(what="input columns")
    if nr <= 0 or nc <= 0:
        raise DlibFormatError(f"invalid input size {nr}x{nc}")
    return InputRGBImageSized(avg_red, avg_green, avg_blue, nr, nc)


def _read_layer(reader: ByteReader, version: int) -> Layer:
    if version == _MARKER_VERSION:
        return TagMarker()
    layer = _read_layer_details(reader)
    # add_layer bookkeeping: setup/stale/disabled flags and scratch tensors
    # that carry no weights.
    for _ in range(3):
        reader.read_bool()
    for _ in range(3):
        reader.read_tensor()
    if version == _ADD_LAYER_ON_INPUT_VERSION:
        reader.read_int(what="sample expansion factor")
    return layer


def _read_layer_details(reader: ByteReader) -> Layer:
    start = reader.pos
    name = reader.read_string()
    if name == "con_4":
        return _read_conv(reader)
    if name == "affine_":
        return _read_affine(reader)
    if name == "fc_2":
        return _read_fc(reader)
    if name == "relu_":
        return Relu()
    if name == "add_prev_":
        return AddPrev()
    if name in ("max_pool_2", "avg_pool_2"):
        return _read_pool(reader, name[:3])
    raise DlibFormatError(f"unsupported layer {name!r} at offset {start}")


def _read_conv(reader: ByteReader) -> Conv:
    params = reader.read_tensor().ravel()
    num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x = (
        reader.read_int(what="con_ field") for _ in range(7)
    )
    filters_shape = reader.read_alias_tensor()
    biases_shape = reader.read_alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.read_float()
    n_weights = math.prod(filters_shape)
    if (
        filters_shape[0] != num_filters
        or filters_shape[2:] != (nr, nc)
        or math.prod(biases_shape) != num_filters
        or params.size != n_weights + num_filters
        or min(stride_y, stride_x) <= 0
        or min(padding_y, padding_x) < 0
    ):
        raise DlibFormatError(
            f"inconsistent con_ layer: params={params.size}, filters={filters_shape}, "
            f"biases={biases_shape}, num_filters={num_filters}, kernel={nr}x{nc}"
        )
    return Conv(
        filters=params[:n_weights].reshape(filters_shape),
        biases=params[n_weights:],
        stride_y=stride_y,
        stride_x=stride_x,
        padding_y=padding_y,
        padding_x=padding_x,
    )


def _read_affine(reader: ByteReader) -> Affine:
    params = reader.read_tensor().ravel()
    gamma_size = math.prod(reader.read_alias_tensor())
    beta_size = math.prod(reader.read_alias_tensor())
    mode = reader.read_int(what="affine mode")
    if mode not in (_AFFINE_CONV_MODE, _AFFINE_FC_MODE):
        raise DlibFormatError(f"unknown affine_ mode {mode}")
    if gamma_size != beta_size or params.size != gamma_size + beta_size:
        raise DlibFormatError(
            f"inconsistent affine_ layer: params={params.size}, "
            f"gamma={gamma_size}, beta={beta_size}"
        )
    # gamma aliases the front of params and beta the rest.
    return Affine(
        gamma=params[:gamma_size],
        beta=params[gamma_size:],
        conv_mode=mode == _AFFINE_CONV_MODE,
    )


def _read_fc(reader: ByteReader) -> FullyConnected:
    num_outputs = reader.read_int(what="fc_ outputs")
    num_inputs = reader.read_int(what="fc_ inputs")
    params = reader.read_tensor().ravel()
    weights_shape = reader.read_alias_tensor()
    reader.read_alias_tensor()  # biases: shape implied by num_outputs
    bias_mode = reader.read_int(what="fc_ bias mode")
    for _ in range(4):  # learning-rate and weight-decay multipliers
        reader.read_float()
    if bias_mode not in (_FC_HAS_BIAS, _FC_NO_BIAS):
        raise DlibFormatError(f"unknown fc_ bias mode {bias_mode}")
    n_weights = num_inputs * num_outputs
    n_biases = num_outputs if bias_mode == _FC_HAS_BIAS else 0
    if math.prod(weights_shape) != n_weights or params.size != n_weights + n_biases:
        raise DlibFormatError(
            f"inconsistent fc_ layer: params={params.size}, weights={weights_shape}, "
            f"inputs={num_inputs}, outputs={num_outputs}"
        )
    return FullyConnected(
        weights=params[:n_weights].reshape(num_inputs, num_outputs),
        biases=params[n_weights:] if n_biases else None,
    )


def _read_pool(reader: ByteReader, kind: str) -> Pool:
    nr, nc, stride_y, stride_x, padding_y, padding_x = (
        reader.read_int(what="pool field") for _ in range(6)
    )
    if min(nr, nc, padding_y, padding_x) < 0 or min(stride_y, stride_x) <= 0:
        raise DlibFormatError(f"invalid {kind}_pool_ geometry")
    return Pool(kind, nr, nc, stride_y, stride_x, padding_y, padding_x)
