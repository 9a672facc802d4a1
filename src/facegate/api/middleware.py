"""Pure ASGI middleware: request guards (406, 413 before the body is read, 408 for a body that
does not arrive in time, admission of inference requests by estimated cost before the body is
read) and observability.

Pure ASGI rather than ``BaseHTTPMiddleware`` so bodies stream through untouched and a refusal
can be sent before an oversized body is received.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facegate.api.envelope import ERROR_CODE_HEADER, failure
from facegate.api.metrics import Metrics
from facegate.api.payloads import RAW_IMAGE_TYPES
from facegate.config import Settings
from facegate.errors import (
    BadRequest,
    FacegateError,
    NotAcceptable,
    PayloadTooLarge,
    RequestTimeout,
    Unavailable,
)
from facegate.service.inference import InferencePool, Ticket, current_ticket

log = logging.getLogger("facegate.request")

_JSON_PATH_PREFIXES = ("/v1", "/healthz", "/readyz")
_MULTI_IMAGE_PATHS = ("/v1/enroll",)
# Endpoints whose JSON holds only names and ids: no image, so no room for one either.
_NO_IMAGE_PATHS = ("/v1/collection", "/v1/train")
_JSON_OVERHEAD = 64 * 1024
# Requests that run the face models: admitted by the inference pool before their body is read.
_INFERENCE_ROUTES = frozenset(
    {
        ("POST", "/v1/spdetect"),
        ("POST", "/v1/facedetect"),
        ("POST", "/v1/enroll"),
        ("PUT", "/v1/enroll"),
        ("POST", "/v1/match"),
        ("POST", "/v1/identify"),
    }
)
# A refused request's body up to this size is read and dropped, so the connection can carry the
# client's retry; a larger one is not worth the reading: the answer closes the connection (and
# is sent before the body, which a client still sending may not see).
_DRAIN_LIMIT = 1024 * 1024
# Matched on the raw header bytes: a client's id is echoed only if it is plain ASCII.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9_.-]{1,64}")


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


def _images_accepted(settings: Settings, path: str) -> int:
    normal = path.rstrip("/")
    if normal in _NO_IMAGE_PATHS:
        return 0
    return settings.max_images_per_enrollment if normal in _MULTI_IMAGE_PATHS else 1


def body_limit(settings: Settings, path: str, content_type: str | None) -> int:
    """Largest body accepted: what the endpoint can use (ten base64 images for enrollment, one
    for match/identify/detection, none for collections and training) plus 64 KB of JSON."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in RAW_IMAGE_TYPES:
        return settings.max_image_bytes
    if settings.max_request_bytes > 0:
        return settings.max_request_bytes
    base64_image = (settings.max_image_bytes + 2) // 3 * 4
    return base64_image * _images_accepted(settings, path) + _JSON_OVERHEAD


def limit_setting(settings: Settings, path: str, content_type: str | None) -> str:
    """The setting(s) that raise :func:`body_limit` for this kind of body."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in RAW_IMAGE_TYPES:
        return "FACEGATE_MAX_IMAGE_BYTES"
    if settings.max_request_bytes > 0 or _images_accepted(settings, path) == 0:
        return "FACEGATE_MAX_REQUEST_BYTES"
    return (
        "FACEGATE_MAX_IMAGE_BYTES (the body limit is derived from it) or FACEGATE_MAX_REQUEST_BYTES"
    )


def _too_large(limit: int, detail: str, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body {detail}; the limit here is {limit} bytes", setting=setting
    )


def _request_id(scope: Scope) -> str:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return uuid.uuid4().hex


class TrailingSlash:
    """``/v1/collection/`` is served as ``/v1/collection``: no redirect (Starlette's would build
    its Location from the client's Host header), the same route either way.

    The scope is changed in place so that the outer middleware sees the route that matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope["path"] = path.rstrip("/") or "/"
                raw: bytes | None = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings, pool: InferencePool | None = None) -> None:
        self.app = app
        self.settings = settings
        self.pool = pool

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
        setting = limit_setting(self.settings, path, headers.get("content-type"))
        declared = headers.get("content-length")
        length: int | None = None
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await failure(BadRequest("the Content-Length header is not a number"))(
                    scope, receive, send
                )
                return
            if length > limit:
                # Refused on the header alone: the body is never read, so the connection ends.
                error = _too_large(limit, f"is {length} bytes", setting)
                await failure(error, headers={"Connection": "close"})(scope, receive, send)
                return
        timeout = self.settings.body_timeout_s
        deadline = asyncio.get_running_loop().time() + timeout if timeout > 0 else None
        kind = f"{scope['method']} {path}"
        if self.pool is None or (scope["method"], path) not in _INFERENCE_ROUTES:
            await self.app(scope, _guarded(receive, limit, setting, deadline, timeout), send)
            return
        try:
            ticket = self.pool.admit(kind, length)
        except Unavailable as refused:
            guarded = _guarded(receive, limit, setting, deadline, timeout)
            await _refuse_unread(refused, length, guarded, scope, receive, send)
            return
        # The ticket learns how long the body took to arrive: the queue's time bound excludes it.
        guarded = _guarded(receive, limit, setting, deadline, timeout, ticket)
        token = current_ticket().set(ticket)
        try:
            await self.app(scope, guarded, send)
        finally:
            current_ticket().reset(token)
            self.pool.release(ticket)


async def _refuse_unread(
    error: FacegateError,
    length: int | None,
    guarded: Receive,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Answer ``error`` without parsing the body: a small one is read and dropped (the
    connection stays usable), a large or unsized one is left and the connection closed."""
    headers: dict[str, str] | None = {"Connection": "close"}
    if length is not None and length <= _DRAIN_LIMIT:
        try:
            more = True
            while more:
                message = await guarded()
                more = message["type"] == "http.request" and message.get("more_body", False)
            headers = None
        except FacegateError:  # too slow or over the limit after all: close
            pass
    await failure(error, headers=headers)(scope, receive, send)


def _guarded(
    receive: Receive,
    limit: int,
    setting: str,
    deadline: float | None,
    timeout: float,
    ticket: Ticket | None = None,
) -> Receive:
    """A receive that fails once more than ``limit`` bytes arrived (chunked bodies), or when the
    body is still incomplete at ``deadline`` (a client sending a byte a second holds a worker
    and a connection for as long as it likes otherwise). The time spent waiting for the body's
    bytes is added to ``ticket.client_s``."""
    seen = 0
    complete = False

    async def wrapped() -> Message:
        nonlocal seen, complete
        if ticket is not None and not complete:
            started = time.monotonic()
            try:
                return await _received()
            finally:
                ticket.client_s += time.monotonic() - started
        return await _received()

    async def _received() -> Message:
        nonlocal seen, complete
        if complete or deadline is None:
            # After the body only http.disconnect can come, and waiting for it is legitimate.
            message = await receive()
        else:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(
                    f"the request body did not arrive within {timeout:g} s; send it faster, or "
                    "the operator can raise FACEGATE_BODY_TIMEOUT_S"
                ) from None
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            complete = not message.get("more_body", False)
            if seen > limit:
                raise _too_large(limit, f"is over {limit} bytes", setting)
        return message

    return wrapped


_ERROR_CODE_HEADER = ERROR_CODE_HEADER.encode("ascii")


class Observability:
    """One structured log line and one metrics observation per request; an x-request-id.

    A refusal's line also names its stable error code (``error``), read from the
    x-facegate-error header the envelope sets, so logs can be searched by code.
    """

    def __init__(
        self, app: ASGIApp, metrics: Metrics, known_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        # Any header bytes are accepted here: an id that is not plain ASCII is replaced, never
        # echoed (it could not be encoded into the answer, which used to fail after the commit).
        request_id = _request_id(scope)
        encoded_id = request_id.encode("ascii")
        status = 500
        error: str | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, error
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                for name, value in message["headers"]:
                    if name.lower() == _ERROR_CODE_HEADER:
                        error = value.decode("latin-1")
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", encoded_id),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered outside this middleware (the one handler of unexpected errors): a bug.
            # (A cancelled request, a BaseException, is no error of the server's.)
            error = error or "internal_error"
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or (
                scope["path"] if scope["path"] in self.known_paths else "unmatched"
            )
            method: str = scope["method"]
            self.metrics.observe(method, template, status, elapsed)
            client = scope.get("client")
            extra: dict[str, object] = {
                "method": method,
                "path": scope["path"],
                "route": template,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
                "bytes_in": headers.get("content-length"),
                "key_id": scope.get("state", {}).get("key_id"),
                "request_id": request_id,
                "client": client[0] if client else None,
            }
            if error is not None:
                extra["error"] = error
            log.info("request", extra=extra)
