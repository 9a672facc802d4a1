"""A bounded pool for the CPU-heavy engine calls, with admission by estimated cost.

Overload must degrade gracefully: a request either gets an answer within a bounded time or a
503 with Retry-After at once, before it has cost anything. So admission happens when the
request's headers arrive, before its body is read or parsed (the request guard calls
:meth:`InferencePool.admit` and the route's :meth:`InferencePool.run` uses that ticket):

- Cost: seconds of worker time, estimated per kind of request (``POST /v1/match``, ...) from a
  moving average of the time its recent calls took, scaled by how large this body is against
  that kind's usual body (ten images cost more than one).
- Time: the estimated wait is the backlog (the estimated cost of everything admitted and not
  finished) shared among the workers; while it is over ``max_wait_s`` a busy server refuses
  every request at once, with Retry-After saying when the backlog will have drained. The rule
  is the same for every kind of request, and while requests queue no kind holds more than its
  equal share of the places (see :meth:`InferencePool._admit`: fairness).
  One that was admitted but still without a worker ``max_wait_s`` after its admission (the
  estimate was wrong, or reading and parsing its body took the server long) is refused then.
  Time spent waiting for the client's own bytes (a slow upload) is not counted against it. Its
  wait is bounded either way, not only the queue's length.
- Count and memory: at most ``queue_limit`` requests wait, and the bodies of admitted requests
  (by Content-Length) stay under ``max_body_bytes`` together, so parsing many large bodies at
  once cannot exhaust memory.

Everything is refused once shutdown began.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from facegate.errors import Unavailable

P = ParamSpec("P")
R = TypeVar("R")

# First guesses of a call's worker seconds, replaced by measurement after a few calls.
DEFAULT_COST_S = 0.25
# Weight of the newest observation in the moving averages.
SMOOTHING = 0.2
# A body's size moves its estimate within these factors of its kind's average cost.
SIZE_FACTOR_RANGE = (0.5, 10.0)
# Retry-After never says more than this: an estimate that far ahead is not worth trusting.
MAX_RETRY_AFTER_S = 30
OTHER = "other"
# A kind refused this recently still wants its share of the queue (admit's share per kind).
DEMAND_WINDOW_S = 2.0


def resolve_workers(configured: int) -> int:
    return configured if configured > 0 else (os.cpu_count() or 1)


@dataclass
class _Kind:
    cost_s: float = DEFAULT_COST_S
    body_bytes: float = 0.0  # 0 until a body of this kind was seen

    def estimate(self, body_bytes: int | None) -> float:
        if not body_bytes or self.body_bytes <= 0:
            return self.cost_s
        low, high = SIZE_FACTOR_RANGE
        ratio = min(high, max(low, body_bytes / self.body_bytes))
        # Half the cost is per request (detection at a bounded size), half grows with the body.
        return self.cost_s * (0.5 + 0.5 * ratio)

    def observe(self, seconds: float, body_bytes: int | None) -> None:
        self.cost_s += SMOOTHING * (seconds - self.cost_s)
        if body_bytes:
            if self.body_bytes <= 0:
                self.body_bytes = float(body_bytes)
            else:
                self.body_bytes += SMOOTHING * (body_bytes - self.body_bytes)


@dataclass
class Ticket:
    """One admitted request: its share of the backlog until it is released."""

    kind: str
    cost_s: float
    body_bytes: int
    # When it was admitted (time.monotonic), and the seconds since then spent waiting for the
    # client to send its body: the queue's time bound counts the rest.
    admitted_at: float = field(default_factory=time.monotonic)
    client_s: float = 0.0
    released: bool = field(default=False)
    used: bool = field(default=False)

    def server_s(self) -> float:
        """Seconds the server has held it since admission, the client's upload excluded."""
        return time.monotonic() - self.admitted_at - self.client_s


_current: contextvars.ContextVar[Ticket | None] = contextvars.ContextVar(
    "facegate_inference_ticket", default=None
)


def current_ticket() -> contextvars.ContextVar[Ticket | None]:
    """The ticket of the request being served (set by the request guard around the app)."""
    return _current


class InferencePool:
    def __init__(
        self,
        workers: int,
        queue_limit: int,
        *,
        max_wait_s: float = 1.0,
        max_body_bytes: int = 0,
    ) -> None:
        self.workers = max(1, workers)
        self.queue_limit = max(0, queue_limit)
        self.max_wait_s = max_wait_s
        self.max_body_bytes = max_body_bytes
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="facegate-infer")
        # Created lazily on the serving event loop; only workers' worth of calls reach the
        # executor, so its own unbounded queue is never used.
        self._slots: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._kinds: dict[str, _Kind] = {}
        self._admitted = 0
        self._in_flight: dict[str, int] = {}  # admitted requests by kind
        self._refused_at: dict[str, float] = {}  # the last refusal of each kind (monotonic)
        self._backlog_s = 0.0
        self._body_bytes = 0
        self._closing = False

    @property
    def in_flight(self) -> int:
        """Admitted requests: running plus waiting."""
        return self._admitted

    def estimated_wait_s(self) -> float:
        """Seconds a request admitted now would wait for a worker, by the current estimates."""
        return self._backlog_s / self.workers

    def admit(self, kind: str, body_bytes: int | None = None) -> Ticket:
        """Admit one request of ``kind`` with a body of ``body_bytes`` (None: unknown), or raise
        Unavailable with a Retry-After at once."""
        with self._lock:
            try:
                return self._admit(kind, body_bytes)
            except Unavailable:
                self._refused_at[kind] = time.monotonic()
                raise

    def _admit(self, kind: str, body_bytes: int | None) -> Ticket:
        if self._closing:
            raise Unavailable("the server is shutting down; retry in a moment")
        stats = self._kinds.setdefault(kind, _Kind())
        cost = stats.estimate(body_bytes)
        wait = self._backlog_s / self.workers
        if self._admitted >= self.workers + self.queue_limit:
            raise Unavailable(
                f"the server is overloaded ({self._admitted} requests are waiting for "
                "face inference); retry in a moment",
                retry_after_s=_retry_after(wait),
            )
        busy = self._admitted >= self.workers
        # A busy server refuses while the queue is over its time bound; an idle one takes
        # anything. The bound is on the wait alone, the same for every kind: adding the
        # request's own cost (as before) refused the costliest kind first whenever the backlog
        # was near the bound, so under overload face detection on a large photo got 1.0/s of
        # its 3.2/s share (BENCHMARKS.md). The backlog still counts each admitted request's
        # estimated cost, so costly requests hold the others back by what they really cost.
        if busy and wait >= self.max_wait_s:
            raise Unavailable(
                f"the server is overloaded (about {wait:.1f} s of face inference is queued, "
                f"the limit is {self.max_wait_s:g} s); retry after the time in Retry-After",
                retry_after_s=_retry_after(wait),
            )
        # A share per kind. The wait alone is blind to kinds, but under overload the room it
        # leaves opens when a request finishes, and the first to arrive then is the client just
        # answered, whose next request is often of the same kind: the rule alone let face
        # detection (the costliest, freeing the most room) take 5x the places of match or
        # identify. So while the queue holds more than the workers, a kind holding more than
        # its equal share of the admitted requests (among the kinds in flight or refused in
        # the last DEMAND_WINDOW_S) is refused, leaving the place to the others. Work-conserving:
        # it only applies with requests queued, and a kind alone has all the places.
        if busy:
            now = time.monotonic()
            wanting = {k for k, n in self._in_flight.items() if n > 0}
            wanting |= {k for k, t in self._refused_at.items() if now - t < DEMAND_WINDOW_S}
            wanting.add(kind)
            share = math.ceil(self._admitted / len(wanting))
            held = self._in_flight.get(kind, 0)
            if len(wanting) > 1 and held > share:
                raise Unavailable(
                    f"the server is overloaded ({held} of the {self._admitted} requests "
                    f"admitted are {kind}, more than its share of {share}); retry after the "
                    "time in Retry-After",
                    retry_after_s=_retry_after(wait),
                )
        size = body_bytes or 0
        if (
            self.max_body_bytes > 0
            and self._admitted > 0
            and self._body_bytes + size > self.max_body_bytes
        ):
            raise Unavailable(
                f"the server is overloaded ({self._body_bytes} bytes of request bodies are "
                "being processed); retry in a moment",
                retry_after_s=_retry_after(wait),
            )
        self._admitted += 1
        self._in_flight[kind] = self._in_flight.get(kind, 0) + 1
        self._backlog_s += cost
        self._body_bytes += size
        return Ticket(kind, cost, size)

    def observe(self, kind: str, seconds: float, body_bytes: int | None = None) -> None:
        """One call of ``kind`` took ``seconds`` of worker time: the estimates follow."""
        with self._lock:
            self._kinds.setdefault(kind, _Kind()).observe(seconds, body_bytes)

    def release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.released:
                return
            ticket.released = True
            self._admitted -= 1
            self._in_flight[ticket.kind] -= 1
            # Reset when empty so rounding never accumulates into a phantom backlog.
            self._backlog_s = max(0.0, self._backlog_s - ticket.cost_s) if self._admitted else 0.0
            self._body_bytes -= ticket.body_bytes

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn`` on a worker thread, if one is free within ``max_wait_s`` of the request's
        admission (the time its client took to send the body excluded: a slow upload is not
        held against it)."""
        ticket = _current.get()
        own = ticket is None or ticket.used or ticket.released
        if own:
            ticket = self.admit(OTHER)
        assert ticket is not None
        ticket.used = True
        try:
            slots = self._slots_for_loop()
            # The bound counts from admission: reading and parsing the body on a busy event
            # loop is waiting too (under overload it was most of an admitted request's time).
            left = self.max_wait_s - ticket.server_s()
            try:
                if slots.locked():
                    async with asyncio.timeout(max(0.0, left)):
                        await slots.acquire()
                else:
                    await slots.acquire()
            except TimeoutError:
                raise Unavailable(
                    f"the server is overloaded (no face inference worker was free within "
                    f"{self.max_wait_s:g} s); retry in a moment",
                    retry_after_s=_retry_after(self.estimated_wait_s()),
                ) from None
            try:
                loop = asyncio.get_running_loop()
                call = functools.partial(fn, *args, **kwargs)
                started = time.perf_counter()
                result = await loop.run_in_executor(self._executor, call)
                self.observe(ticket.kind, time.perf_counter() - started, ticket.body_bytes)
                return result
            finally:
                slots.release()
        finally:
            # The work is done: what remains of the request (encoding the answer) costs no
            # worker time, so the backlog forgets it now, not when the answer is sent.
            self.release(ticket)

    def close(self) -> None:
        """Refuse new work, let admitted work finish."""
        with self._lock:
            self._closing = True
        self._executor.shutdown(wait=True, cancel_futures=False)

    def _slots_for_loop(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        return self._slots


def _retry_after(wait_s: float) -> int:
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(wait_s)))
