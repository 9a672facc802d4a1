"""The app factory: services wired once, routes, middleware, the error envelope, lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from facegate import __version__
from facegate.api.errors import install_error_handlers
from facegate.api.metrics import Metrics
from facegate.api.middleware import Observability, RequestGuard, TrailingSlash
from facegate.api.routes import collections, enrollments, faces, operations, recognition
from facegate.config import Settings
from facegate.service.container import Services
from facegate.service.inference import resolve_workers
from facegate.service.ports import Engine
from facegate.store.db import Database

log = logging.getLogger("facegate.api")

DESCRIPTION = """\
Self-hosted face recognition speaking the Trueface (Chui) v1 REST API.

Every request under `/v1` needs an `x-api-key` header (create keys with `facegate keys create`).
Every answer is `{"data": ..., "message": ..., "success": ...}`.
"""


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the application: migrates the store now; loads models at start-up or first use."""
    workers = resolve_workers(settings.max_concurrent_inference)
    if engine is None:
        from facegate.engine.engine import FaceEngine

        # Tell the engine how many calls run at once so it splits the cores between them.
        engine = FaceEngine(settings.model_copy(update={"max_concurrent_inference": workers}))
    database = Database.from_settings(settings)
    services = Services.build(settings, engine, database)
    metrics = Metrics(lambda: services.inference.in_flight)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.start)
        if settings.warm_up_on_start:
            threading.Thread(
                target=_warm_up, args=(services.engine,), name="facegate-warm-up", daemon=True
            ).start()
        try:
            yield
        finally:
            await run_in_threadpool(services.stop)
            database.dispose()

    app = FastAPI(
        title="facegate",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # A redirect's Location would be built from the client's Host header; TrailingSlash
        # serves both spellings from the same route instead.
        redirect_slashes=False,
    )
    app.state.services = services
    app.state.metrics = metrics
    install_error_handlers(app)
    for module in (faces, enrollments, collections, recognition, operations):
        app.include_router(module.router)
    # The last added runs first: observe everything, including the guards' refusals.
    app.add_middleware(RequestGuard, settings=settings, pool=services.inference)
    app.add_middleware(TrailingSlash)
    app.add_middleware(Observability, metrics=metrics)
    return app


def _warm_up(engine: Engine) -> None:
    try:
        engine.warm_up()
        log.info("models loaded")
    except Exception:
        log.exception("loading the models failed; /readyz stays 503")
