"""The model registry: files in installed packages, checked by SHA-256; a locked lazy cache."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from facegate.config import Settings
from facegate.engine.registry import (
    LoadContext,
    ModelCache,
    ModelFile,
    ModelKind,
    ModelSpec,
    file_sha256,
)
from facegate.engine.zoo import REGISTRY, names
from facegate.errors import ModelCorrupt, ModelMissing


@pytest.fixture
def carrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed package ``fake_carrier`` holding one weights file."""
    package = tmp_path / "fake_carrier"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models" / "net.onnx").write_bytes(b"weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    return package / "models" / "net.onnx"


def _file(sha256: str | None) -> ModelFile:
    return ModelFile("fake_carrier", "models/net.onnx", sha256, "fake-carrier==1.0")


def test_a_file_with_its_digest_is_found(carrier: Path) -> None:
    digest = hashlib.sha256(b"weights").hexdigest()
    assert _file(digest).verified() == carrier
    assert file_sha256(carrier) == digest


def test_a_changed_file_is_a_clear_start_up_error(carrier: Path) -> None:
    with pytest.raises(ModelCorrupt) as caught:
        _file("0" * 64).verified()
    message = caught.value.message
    assert str(carrier) in message and "0" * 64 in message
    assert "pip install --force-reinstall fake-carrier==1.0" in message
    assert caught.value.status == 503


def test_a_missing_package_or_file_says_what_to_install(carrier: Path) -> None:
    with pytest.raises(ModelMissing, match="pip install no-such-carrier"):
        ModelFile("no_such_carrier_pkg", "x.onnx", None, "no-such-carrier").verified()
    with pytest.raises(ModelMissing, match="missing from the installed"):
        ModelFile("fake_carrier", "models/absent.onnx", None, "fake-carrier").verified()


def test_every_entry_names_pinned_files_and_recognisers_a_recipe() -> None:
    assert names(ModelKind.DETECTOR) == ["yunet", "mtcnn"]
    assert names(ModelKind.RECOGNIZER) == ["sface", "dlib"]
    for spec in REGISTRY.values():
        assert spec.files and spec.licence
        for model_file in spec.files:
            # Only facegate's own package data goes without a digest.
            assert model_file.sha256 is not None or model_file.package == "facegate.models"
        if spec.kind is ModelKind.RECOGNIZER:
            assert spec.recipe is not None and spec.recipe.dimension > 0
    keys = [s.recipe.key for s in REGISTRY.values() if s.recipe is not None]
    assert len(set(keys)) == len(keys)


def test_the_cache_loads_each_model_once_under_concurrency(tmp_path: Path) -> None:
    loads: list[str] = []

    def slow_load(spec: ModelSpec, _context: LoadContext) -> Any:
        loads.append(spec.name)
        time.sleep(0.05)
        return object()

    registry = {
        name: ModelSpec(name, ModelKind.DETECTOR, "1", (), "test", slow_load) for name in "ab"
    }
    cache = ModelCache(registry, LoadContext(Settings(data_dir=tmp_path), 1, tmp_path))
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda n=name: results.append(cache.get(n))) for name in "aaaabbbb"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(loads) == ["a", "b"]
    assert len({id(r) for r in results}) == 2
    assert cache.loaded("a") and cache.loaded("b")
    with pytest.raises(ModelMissing, match="the registry has a, b"):
        cache.get("c")
