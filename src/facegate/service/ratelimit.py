"""Per-key fixed-window request counts, kept in the database so every process shares them.

A key may make ``per_minute`` requests in each minute of wall-clock time (windows aligned to
the epoch minute, the same in every process and machine). Each request increments its key's
row for the current window in one atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``
statement (SQLite >= 3.35 and PostgreSQL both run it), so two processes never both admit the
last request of a window. A refused request is counted too: it tells how far over the limit a
key went, and the refusal does not depend on it. Rows of windows before the previous one are
deleted by whichever process first sees a new window.

A fixed window can admit up to twice the limit across a window boundary (the end of one
minute and the start of the next); a per-process token bucket admitted the limit times the
number of processes, which was the worse error.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import Table, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from facegate.errors import RateLimited
from facegate.store.db import Database
from facegate.store.models import RateLimitWindow

WINDOW_S = 60


class RateLimiter:
    def __init__(
        self, database: Database, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.per_minute = per_minute
        self._database = database
        # Wall-clock time: the windows must be the same in every process, which a monotonic
        # clock (per boot, per machine) is not.
        self._clock = clock
        self._pruned_window: int | None = None
        self._prune_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, key: str) -> None:
        """Count one request of ``key`` or raise RateLimited with the wait in seconds."""
        if not self.enabled:
            return
        now = self._clock()
        window = int(now // WINDOW_S) * WINDOW_S
        with self._database.transaction() as session:
            count = _increment(session, key, window)
        self._prune(window)
        if count <= self.per_minute:
            return
        wait = max(1, math.ceil(window + WINDOW_S - now))
        raise RateLimited(
            f"rate limit of {self.per_minute} requests per minute exceeded; retry in {wait} s",
            retry_after_s=wait,
        )

    def _prune(self, window: int) -> None:
        """Once per new window in this process: drop windows older than the previous one."""
        with self._prune_lock:
            if self._pruned_window == window:
                return
            self._pruned_window = window
        with self._database.transaction() as session:
            session.execute(
                delete(RateLimitWindow).where(RateLimitWindow.window_start < window - WINDOW_S)
            )


def _increment(session: Session, key: str, window: int) -> int:
    table = RateLimitWindow.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    values = {"key_id": key, "window_start": window, "requests": 1}
    keys = [table.c.key_id, table.c.window_start]
    counted = {"requests": table.c.requests + 1}
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(table).values(values)
        statement = statement.on_conflict_do_update(index_elements=keys, set_=counted)
    elif dialect == "sqlite":
        statement = sqlite.insert(table).values(values)
        statement = statement.on_conflict_do_update(index_elements=keys, set_=counted)
    else:  # pragma: no cover - the store supports these two backends only
        raise NotImplementedError(f"rate limits need SQLite or PostgreSQL, not {dialect}")
    return int(session.execute(statement.returning(table.c.requests)).scalar_one())
