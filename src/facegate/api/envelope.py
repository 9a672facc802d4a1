"""The one answer shape: ``{"data": ..., "message": ..., "success": ...}``."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from facegate.errors import FacegateError


def ok(data: Any, message: str | None) -> JSONResponse:
    return JSONResponse({"data": data, "message": message, "success": True})


# The stable error code (``no_face_found``, ``not_trained``, …) travels in a header so that the
# seed's envelope keeps exactly its three fields while programs can still tell refusals apart.
ERROR_CODE_HEADER = "x-facegate-error"


def failure(error: FacegateError, headers: dict[str, str] | None = None) -> JSONResponse:
    extra = dict(headers or {})
    # 429 and every 503 say when to come back, so clients back off instead of hammering.
    if error.retry_after_s is not None:
        extra["Retry-After"] = str(error.retry_after_s)
    # A body left half-read cannot be skipped reliably: the connection ends with this answer.
    if error.closes_connection:
        extra["Connection"] = "close"
    return JSONResponse(
        {"data": None, "message": error.message, "success": False},
        status_code=error.status,
        headers={**extra, ERROR_CODE_HEADER: error.code},
    )
