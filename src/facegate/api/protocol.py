"""facegate's HTTP/1.1 protocol: uvicorn's h11 protocol with a header timeout and a connection cap.

uvicorn times out only idle kept-alive connections, and only after a first response: a socket
that never sends a byte, or sends its headers a byte at a time, is kept for ever, and enough of
them exhaust the process's file descriptors. uvicorn's ``limit_concurrency`` still accepts every
connection and answers over the limit with a plain-text 503 outside the API's envelope. So:

- a request's line and headers must arrive within ``header_timeout_s`` of the connection opening
  (or of the next request's first byte on a kept-alive connection); a request answered before its
  body was read must finish sending it within that time too; otherwise the connection is closed;
- a connection beyond ``max_connections`` is served by an app that answers every request 503 in
  the envelope, with Retry-After and ``Connection: close``, and gets at most a second to send
  its request; beyond twice ``max_connections`` a connection is dropped at once, unanswered, so
  that open sockets (file descriptors) stay bounded whatever the clients do.

The body of a request being served is bounded in time by :class:`~facegate.api.middleware.
RequestGuard` (408), where the answer can still be a normal ASGI response.
"""

from __future__ import annotations

import asyncio
import json

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from facegate.api.envelope import failure
from facegate.config import Settings
from facegate.errors import Unavailable

# An over-capacity connection is kept only long enough to read a request and answer it 503.
_OVER_CAPACITY_GRACE_S = 1.0
# Past this multiple of max_connections, connections are dropped without an answer.
_SHED_FACTOR = 2


async def _over_capacity(scope: Scope, receive: Receive, send: Send) -> None:
    error = Unavailable("the server has too many open connections; retry in a moment")
    await failure(error, headers={"Connection": "close"})(scope, receive, send)


def _raw_timeout_answer(seconds: float) -> bytes:
    """A 408 written straight to the socket: h11 cannot answer a request it has not parsed."""
    body = json.dumps(
        {
            "data": None,
            "message": f"the request line and headers did not arrive within {seconds:g} s",
            "success": False,
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """Configured by subclassing (:func:`protocol_for`): uvicorn builds protocols itself."""

    header_timeout_s: float = 10.0
    max_connections: int = 0

    _deadline: asyncio.TimerHandle | None = None

    _timeout_s: float = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timeout_s = self.header_timeout_s
        open_now = len(self.connections)
        if self.max_connections > 0 and open_now > self.max_connections * _SHED_FACTOR:
            transport.abort()
            return
        if self.max_connections > 0 and open_now > self.max_connections:
            # Read the request properly, then refuse it: closing at once would reset a client
            # whose request is already on its way, before it could read any answer.
            self.app = _over_capacity
            grace = _OVER_CAPACITY_GRACE_S
            self._timeout_s = min(self._timeout_s, grace) if self._timeout_s > 0 else grace
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._serving():
            self._disarm()
        elif self._deadline is None:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _serving(self) -> bool:
        """A request's head arrived and its answer is not complete (the app is in charge)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        if self._timeout_s > 0:
            self._deadline = self.loop.call_later(self._timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._serving():
            return
        pending, _closed = self.conn.trailing_data
        if self.conn.their_state is h11.IDLE and pending:
            self.transport.write(_raw_timeout_answer(self._timeout_s))
        self.transport.close()


def protocol_for(settings: Settings) -> type[GuardedH11Protocol]:
    return type(
        "FacegateH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": settings.header_timeout_s,
            "max_connections": settings.max_connections,
        },
    )
