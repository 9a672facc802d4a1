"""Operations: liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facegate.api.deps import ServicesDep
from facegate.api.envelope import failure, ok
from facegate.api.metrics import Metrics
from facegate.errors import Unavailable

router = APIRouter(tags=["operations"])


def _example(data: object, message: str) -> dict[int | str, dict[str, object]]:
    example = {"data": data, "message": message, "success": True}
    return {200: {"content": {"application/json": {"example": example}}}}


@router.get(
    "/healthz", summary="The process is alive", responses=_example({"status": "alive"}, "alive")
)
async def healthz() -> JSONResponse:
    return ok({"status": "alive"}, "alive")


@router.get(
    "/readyz",
    summary="Models loaded and store reachable (503 otherwise)",
    responses=_example({"status": "ready"}, "ready"),
)
async def readyz(services: ServicesDep) -> JSONResponse:
    ready, reason = await run_in_threadpool(services.ready)
    if not ready:
        # Loading the models takes seconds: a prober polling sooner learns nothing new.
        return failure(Unavailable(f"not ready: {reason}", retry_after_s=5))
    return ok({"status": "ready"}, "ready")


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
async def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
