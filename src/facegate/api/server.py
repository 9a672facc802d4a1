"""``facegate serve``: the app on uvicorn, with structured logs and a graceful shutdown."""

from __future__ import annotations

import logging

import uvicorn

from facegate.api.app import create_app
from facegate.api.logs import configure_logging
from facegate.api.protocol import protocol_for
from facegate.config import Settings
from facegate.engine.memory import release_large_blocks_to_os
from facegate.summary import data_folder, database_location, settings_summary

log = logging.getLogger("facegate.api")

# In-flight requests get this long to finish after SIGTERM before connections are closed.
GRACEFUL_SHUTDOWN_S = 30


def serve(settings: Settings, *, data_dir_from_option: bool = False) -> None:
    configure_logging(settings)
    # Before any thread allocates: decoded photos must not stay resident after their request.
    release_large_blocks_to_os()
    # The first lines: what this process serves, from where, with what (never a secret).
    summary = settings_summary(settings)
    folder = data_folder(settings, from_option=data_dir_from_option)
    log.info(
        "facegate %s on http://%s:%s: %s, store %s",
        summary["version"],
        settings.host,
        settings.port,
        folder.describe(),
        database_location(settings),
    )
    # JSON logs carry the settings as an object; plain-text logs spell them out.
    listed = ", ".join(f"{name}={value}" for name, value in summary.items())
    log.info(
        "settings" if settings.log_json else f"settings: {listed}", extra={"settings": summary}
    )
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # Header timeout and connection cap (see api/protocol.py); the body timeout is in the
        # request guard.
        http=protocol_for(settings),
        timeout_keep_alive=settings.keep_alive_timeout_s,
        backlog=settings.backlog,
    )
