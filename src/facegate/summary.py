"""What an operator is told about the settings: where the data is and what runs; never a secret.

``facegate serve`` logs :func:`settings_summary` first; every operator command (serve, keys,
eval, bench) resolves its data folder with :func:`data_folder` and says which one it uses, so
a command run from another folder never works on a store the server does not use unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from facegate import __version__
from facegate.config import Settings

# Client-side settings (the server a CLI command talks to): nothing to do with serving.
_CLIENT_ONLY = {"api_url", "api_key"}
_HIDDEN = "**********"


@dataclass(frozen=True)
class DataFolder:
    path: Path  # absolute
    source: str  # where the setting came from, in words

    def describe(self) -> str:
        return f"data folder {self.path} ({self.source})"


def data_folder(settings: Settings, *, from_option: bool = False) -> DataFolder:
    """The settings' data folder, absolute, and whether --data-dir, FACEGATE_DATA_DIR (or
    .env) or the default chose it. ``from_option``: the command line gave it."""
    if from_option:
        source = "from --data-dir"
    elif "data_dir" in settings.model_fields_set:
        source = "from FACEGATE_DATA_DIR or .env"
    else:
        source = "the default: ./data in the current folder; --data-dir or FACEGATE_DATA_DIR "
        source += "choose another"
    return DataFolder(settings.data_dir.resolve(), source)


def database_location(settings: Settings) -> str:
    """The store's URL with any password replaced by asterisks."""
    return make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)


def store_exists(settings: Settings) -> bool:
    """False only for a SQLite store whose file is not there yet (a server has never run on
    this data folder); other stores cannot be told from here, so they count as present."""
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return True
    return Path(url.database).is_file()


def settings_summary(settings: Settings) -> dict[str, Any]:
    """Every serving setting by name, secrets hidden, paths absolute, the URL without password."""
    summary: dict[str, Any] = {"version": __version__}
    for name in sorted(type(settings).model_fields):
        if name in _CLIENT_ONLY:
            continue
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = _HIDDEN if value.get_secret_value() else None
        elif isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, tuple):
            value = list(value)
        summary[name] = value
    summary["database_url"] = database_location(settings)
    return summary
