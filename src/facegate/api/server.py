"""``facegate serve``: the app on uvicorn, with structured logs and a graceful shutdown."""

from __future__ import annotations

import uvicorn

from facegate.api.app import create_app
from facegate.api.logs import configure_logging
from facegate.api.protocol import protocol_for
from facegate.config import Settings
from facegate.engine.memory import release_large_blocks_to_os

# In-flight requests get this long to finish after SIGTERM before connections are closed.
GRACEFUL_SHUTDOWN_S = 30


def serve(settings: Settings) -> None:
    configure_logging(settings)
    # Before any thread allocates: decoded photos must not stay resident after their request.
    release_large_blocks_to_os()
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
