"""Fixtures for every test: nothing of the machine's facegate configuration leaks in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from facegate.config import Settings


@pytest.fixture(autouse=True)
def hermetic_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``FACEGATE_*`` variable and no ``.env`` file reach a test's Settings (or the servers
    the integration tests start, which inherit this environment)."""
    for name in list(os.environ):
        if name.upper().startswith("FACEGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    yield
