"""Pure ASGI middleware: request guards (406, 413 before the body is read) and observability.

Pure ASGI rather than ``BaseHTTPMiddleware`` so bodies stream through untouched and a refusal
can be sent before an oversized body is received.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facegate.api.envelope import failure
from facegate.api.metrics import Metrics
from facegate.api.payloads import RAW_IMAGE_TYPES
from facegate.config import Settings
from facegate.errors import BadRequest, FacegateError, NotAcceptable, PayloadTooLarge

log = logging.getLogger("facegate.request")

_JSON_PATH_PREFIXES = ("/v1", "/healthz", "/readyz")
_MULTI_IMAGE_PATHS = ("/v1/enroll",)
_JSON_OVERHEAD = 64 * 1024
_REQUEST_ID = re.compile(r"^[\w.-]{1,64}$")


def accepts_json(header: str | None) -> bool:
    """Whether an Accept header admits application/json (absent or empty admits everything)."""
    if header is None or not header.strip():
        return True
    best_specificity, best_q = -1, 0.0
    for part in header.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        specificity = {"application/json": 2, "application/*": 1, "*/*": 0}.get(media.lower(), -1)
        if specificity < best_specificity or specificity < 0:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best_specificity, best_q = specificity, q
    return best_specificity >= 0 and best_q > 0


def body_limit(settings: Settings, path: str, content_type: str | None) -> int:
    """Largest body accepted: one image, or ten base64 images for enrollment."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in RAW_IMAGE_TYPES:
        return settings.max_image_bytes
    if settings.max_request_bytes > 0:
        return settings.max_request_bytes
    base64_image = (settings.max_image_bytes + 2) // 3 * 4
    images = settings.max_images_per_enrollment if path.rstrip("/") in _MULTI_IMAGE_PATHS else 1
    return base64_image * images + _JSON_OVERHEAD


def _too_large(limit: int, detail: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body {detail}; the limit here is {limit} bytes")


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        path: str = scope["path"]
        if path.startswith(_JSON_PATH_PREFIXES) and not accepts_json(headers.get("accept")):
            error: FacegateError = NotAcceptable(
                f"this API answers only application/json, which Accept: {headers['accept'][:100]} "
                "excludes"
            )
            await failure(error)(scope, receive, send)
            return
        limit = body_limit(self.settings, path, headers.get("content-type"))
        declared = headers.get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await failure(BadRequest("the Content-Length header is not a number"))(
                    scope, receive, send
                )
                return
            if length > limit:
                # Refused on the header alone: the body is never read.
                await failure(_too_large(limit, f"is {length} bytes"))(scope, receive, send)
                return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    """A receive that fails once more than ``limit`` bytes arrived (chunked bodies)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit, f"is over {limit} bytes")
        return message

    return wrapped


class Observability:
    """One structured log line and one metrics observation per request; an x-request-id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("ascii")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method: str = scope["method"]
            self.metrics.observe(method, template, status, elapsed)
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "bytes_in": headers.get("content-length"),
                    "key_id": scope.get("state", {}).get("key_id"),
                    "request_id": request_id,
                    "client": client[0] if client else None,
                },
            )
