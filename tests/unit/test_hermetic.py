"""The suite's own guard: a leaked FACEGATE_* variable or a .env file changes no test's Settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facegate.config import Settings


def test_no_facegate_variable_reaches_a_test() -> None:
    assert not [name for name in os.environ if name.upper().startswith("FACEGATE_")]


def test_a_dotenv_file_in_the_working_folder_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("FACEGATE_DATABASE_URL=sqlite:////nowhere/leaked.db\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url is None
    assert settings.sqlalchemy_url.endswith(f"{tmp_path}/facegate.db")
