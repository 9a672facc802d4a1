"""Start-up and browsers: CORS as a setting, the settings summary in the first log lines, and
models that hold the GIL loaded before the server listens."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from facegate.api import server
from facegate.api.app import create_app
from facegate.config import Settings
from facegate.summary import data_folder, database_location, settings_summary
from tests.unit.conftest import FakeEngine

if TYPE_CHECKING:
    from tests.unit.conftest import Tenants

ORIGIN = "https://console.example"


def test_cors_is_off_by_default(client: TestClient, tenants: Tenants) -> None:
    answer = client.get("/v1/collection", headers={**tenants.alice, "origin": ORIGIN})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    preflight = client.options(
        "/v1/collection", headers={"origin": ORIGIN, "access-control-request-method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_origins_are_allowed_with_preflight_and_on_refusals(settings: Settings) -> None:
    configured = settings.model_copy(update={"cors_origins": [ORIGIN]})
    with TestClient(create_app(configured, FakeEngine(configured))) as client:
        preflight = client.options(
            "/v1/enroll",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "x-api-key, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in preflight.headers
        # A refusal is readable by the page: its message, and its code in the exposed header.
        refused = client.get("/v1/collection", headers={"origin": ORIGIN})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == ORIGIN
        assert "x-facegate-error" in refused.headers["access-control-expose-headers"]
        other = client.get("/v1/collection", headers={"origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_CORS_ORIGINS", f"{ORIGIN}, http://localhost:3000")
    assert Settings().cors_origins == [ORIGIN, "http://localhost:3000"]
    monkeypatch.setenv("FACEGATE_CORS_ORIGINS", '["*"]')
    assert Settings().cors_origins == ["*"]
    monkeypatch.delenv("FACEGATE_CORS_ORIGINS")
    assert Settings().cors_origins == []


def test_the_summary_names_every_setting_and_no_secret(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "d",
        database_url="postgresql+psycopg://facegate:hunter2@db.example/facegate",
        api_key="fg_abc_verysecret",  # type: ignore[arg-type]
    )
    summary = settings_summary(settings)
    text = json.dumps(summary)
    assert "hunter2" not in text and "verysecret" not in text
    assert summary["database_url"] == "postgresql+psycopg://facegate:***@db.example/facegate"
    assert summary["data_dir"] == str((tmp_path / "d").resolve())
    assert "api_key" not in summary and "api_url" not in summary  # the client's, not served
    assert {"detector", "recognizer", "port", "cors_origins", "version"} <= summary.keys()
    assert database_location(Settings(data_dir=tmp_path)).startswith("sqlite:////")
    assert data_folder(Settings(data_dir=Path("rel"))).path.is_absolute()


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_serve_logs_the_settings_first(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restored_logging: None,
) -> None:
    started: list[Any] = []
    monkeypatch.setattr(server, "create_app", lambda settings: started.append("app"))
    monkeypatch.setattr(server.uvicorn, "run", lambda *args, **kwargs: started.append("run"))
    settings = Settings(data_dir=tmp_path, api_key="fg_abc_verysecret")  # type: ignore[arg-type]
    server.serve(settings, data_dir_from_option=True)
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines()[:2])
    assert started == ["app", "run"]
    assert (
        first["message"].startswith("facegate ") and "on http://127.0.0.1:8085" in first["message"]
    )
    assert f"data folder {tmp_path.resolve()} (from --data-dir)" in first["message"]
    assert second["message"] == "settings" and second["settings"]["port"] == 8085
    assert "verysecret" not in json.dumps([first, second])


class PreloadingEngine(FakeEngine):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.calls: list[str] = []

    def preload(self) -> None:
        self.calls.append("preload")

    def warm_up(self) -> None:
        self.calls.append(f"warm_up in {threading.current_thread().name}")


def test_models_holding_the_gil_load_before_serving(settings: Settings) -> None:
    warm = settings.model_copy(update={"warm_up_on_start": True})
    engine = PreloadingEngine(warm)
    app = create_app(warm, engine)
    with TestClient(app) as client:
        # The lifespan's start-up (before uvicorn listens) has run the preload already.
        assert engine.calls[:1] == ["preload"]
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 5
        while len(engine.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert engine.calls == ["preload", "warm_up in facegate-warm-up"]
