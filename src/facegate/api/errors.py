"""Every failure becomes the envelope with the right status; only real bugs become 500.

:func:`to_facegate_error` maps framework errors (routing, validation) onto the package's error
hierarchy, so that one function, :func:`facegate.api.envelope.failure`, renders them all.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from facegate.api.envelope import failure
from facegate.errors import (
    BadRequest,
    FacegateError,
    Forbidden,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger("facegate.api")

_BY_STATUS: dict[int, type[FacegateError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FacegateError, _facegate_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _facegate_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacegateError)
    return failure(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return failure(BadRequest(describe_validation_errors(exc.errors())))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return failure(NotFound(f"no such endpoint: {method} {path}"))
    if exc.status_code == 405:
        allowed = _allowed_methods(request, exc)
        message = f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}"
        return failure(MethodNotAllowed(message), headers={"Allow": ", ".join(allowed)})
    error_class = _BY_STATUS.get(exc.status_code, BadRequest if exc.status_code < 500 else None)
    if error_class is None:
        log.error("HTTP error %s on %s %s: %s", exc.status_code, method, path, exc.detail)
        return failure(FacegateError("internal error; it has been logged"))
    return failure(error_class(str(exc.detail)))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return failure(FacegateError("internal error; it has been logged"))


def _allowed_methods(request: Request, exc: HTTPException) -> list[str]:
    """Every method served on this path. Starlette's own Allow header names only the methods of
    the first route that matched the path, so the documented operations are consulted too."""
    methods = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
    operations = request.app.openapi().get("paths", {}).get(request.url.path, {})
    methods.update(method.upper() for method in operations)
    return sorted(methods)


def describe_validation_errors(errors: Any) -> str:
    """Pydantic's error list as one line a person can act on: ``threshold: must be ...``."""
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        kind = error.get("type", "")
        if kind == "missing":
            text = "is required"
        elif kind == "extra_forbidden":
            text = "is not a known field"
        else:
            text = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        parts.append(f"{location}: {text}" if location else text)
    return "; ".join(parts) or "invalid request"


def validation_message(exc: ValidationError) -> str:
    return describe_validation_errors(exc.errors())
