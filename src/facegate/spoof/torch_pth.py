"""Read a PyTorch ``state_dict`` file into numpy arrays without PyTorch.

Both of PyTorch's file layouts are handled:

- the legacy one (before PyTorch 1.6, e.g. torchvision's ``mobilenet_v2-b0353104.pth``): a run
  of pickles (magic number, protocol version, system info, the tensors' metadata, the storage
  keys) followed by each storage's raw bytes, each prefixed by its element count;
- the zip one (PyTorch 1.6 and later): ``*/data.pkl`` plus one ``*/data/<key>`` entry per storage.

The unpickler is restricted: it resolves only an ordered dict, the tensor-rebuild function and
the storage type names, so a file cannot make it import or run anything else.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass
class _Storage:
    key: str
    dtype: np.dtype[Any]
    data: NDArray[Any] | None = None  # filled in once the raw bytes have been read


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> NDArray[Any]:
        data = self.storage.data
        if data is None:
            raise ValueError(f"storage {self.storage.key} has no data")
        if not self.shape:
            return np.array(data[self.offset])
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.shape, strides=[s * itemsize for s in self.stride]
        )
        return np.array(view)  # a copy: the result owns its memory


def _rebuild_tensor(
    storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: object
) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(handle)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage type, key, location, element count[, view metadata])
        if (
            not isinstance(pid, tuple)
            or pid[0] != "storage"
            or not isinstance(pid[1], _StorageType)
        ):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        key = str(pid[2])
        if key not in self._storages:
            self._storages[key] = _Storage(key, pid[1].dtype)
        return self._storages[key]


def _arrays(state: object) -> dict[str, NDArray[Any]]:
    if not isinstance(state, dict):
        raise ValueError("the file does not hold a state_dict (a dict of tensors)")
    return {str(k): v.array() for k, v in state.items() if isinstance(v, _TensorRef)}


def _load_legacy(handle: IO[bytes]) -> dict[str, NDArray[Any]]:
    header = _Unpickler(handle, {})
    if header.load() != LEGACY_MAGIC:
        raise ValueError("not a PyTorch weights file (wrong magic number)")
    header.load()  # protocol version
    header.load()  # system info: byte order and type sizes; little-endian is assumed below
    storages: dict[str, _Storage] = {}
    state = _Unpickler(handle, storages).load()
    keys = _Unpickler(handle, storages).load()
    for key in keys:
        storage = storages[str(key)]
        (count,) = struct.unpack("<q", handle.read(8))
        raw = handle.read(count * storage.dtype.itemsize)
        storage.data = np.frombuffer(raw, storage.dtype)
    return _arrays(state)


def _load_zip(archive: zipfile.ZipFile) -> dict[str, NDArray[Any]]:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ValueError("the zip file has no single data.pkl: not a PyTorch weights file")
    prefix = pickles[0][: -len("data.pkl")]
    storages: dict[str, _Storage] = {}
    state = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
    for key, storage in storages.items():
        storage.data = np.frombuffer(archive.read(f"{prefix}data/{key}"), storage.dtype)
    return _arrays(state)


def load_state_dict(path: Path) -> dict[str, NDArray[Any]]:
    """Name → numpy array for every tensor of a saved ``state_dict``."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return _load_zip(archive)
    with path.open("rb") as handle:
        return _load_legacy(handle)
