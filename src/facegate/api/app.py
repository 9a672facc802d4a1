"""The app factory: services wired once, routes, middleware, the error envelope, lifespan."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from facegate import __version__
from facegate.api.envelope import ERROR_CODE_HEADER
from facegate.api.errors import install_error_handlers
from facegate.api.metrics import Metrics
from facegate.api.middleware import Observability, RequestGuard, TrailingSlash
from facegate.api.routes import collections, enrollments, faces, operations, recognition
from facegate.api.routes.console import install_console
from facegate.api.routes.docs import tidy_openapi
from facegate.api.routes.pages import install_pages
from facegate.config import Settings
from facegate.service.container import Services
from facegate.service.inference import resolve_workers
from facegate.service.ports import Engine, Preloads
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
            if isinstance(services.engine, Preloads):
                # Before the socket opens (uvicorn listens once this start-up is over): a model
                # whose loading holds the GIL would stall every request, /healthz included,
                # for its whole load if it loaded while serving.
                await run_in_threadpool(services.engine.preload)
            threading.Thread(
                target=_warm_up, args=(services.engine,), name="facegate-warm-up", daemon=True
            ).start()
        try:
            yield
        finally:
            await run_in_threadpool(services.stop)
            database.dispose()

    app = FastAPI(
        # Served by install_pages from local assets: FastAPI's own pages load them from a CDN.
        docs_url=None,
        redoc_url=None,
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
    install_pages(app)
    install_console(app)

    def openapi() -> dict[str, Any]:
        return tidy_openapi(FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]
    # The last added runs first: observe everything, including the guards' refusals.
    app.add_middleware(RequestGuard, settings=settings, pool=services.inference)
    if settings.cors_origins:
        # Outside the guard, so that preflights are answered before any refusal and refusals
        # carry the CORS headers a page needs to read their message and code.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["x-api-key", "content-type", "x-request-id"],
            expose_headers=[ERROR_CODE_HEADER, "x-request-id", "retry-after"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(TrailingSlash)
    # Requests refused before routing (the guards' 413, 503, 408) are still counted under their
    # route: the fixed paths are known up front (a bounded set, unlike raw paths).
    fixed_paths = frozenset(
        path
        for module in (faces, enrollments, collections, recognition, operations)
        for route in module.router.routes
        if "{" not in (path := getattr(route, "path", "{"))
    )
    app.add_middleware(Observability, metrics=metrics, known_paths=fixed_paths)
    return app


def _warm_up(engine: Engine) -> None:
    try:
        engine.warm_up()
        log.info("models loaded")
    except Exception:
        log.exception("loading the models failed; /readyz stays 503")
