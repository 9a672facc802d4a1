"""Overload degrades gracefully over real HTTP (``facegate bench load``, shortened): many
clients at once get answers or a 503 with Retry-After, never another 5xx, and admitted
requests are answered within the queue's time bound plus their own work."""

from __future__ import annotations

import pytest

from facegate.eval.load_bench import run_load_bench

pytestmark = pytest.mark.integration


def test_many_clients_get_answers_or_503_with_retry_after() -> None:
    lines: list[str] = []
    # Retry-After ignored: the worst case for the server, every refusal retried at once.
    single, many = run_load_bench(
        clients=16,
        seconds=8,
        single_seconds=3,
        max_requests=5000,
        honour_retry_after=False,
        env={"FACEGATE_MAX_QUEUE_WAIT_S": "1"},
        report=lines.append,
    )
    for tally in (single, many):
        assert tally.server_errors == 0 and tally.transport_errors == 0, lines
        assert tally.bad_retry_after == 0, lines
        assert set(tally.statuses) <= {200, 503}, lines
    assert single.statuses[503] == 0 and single.successes > 0, lines
    assert many.successes > 0, lines
    # One second in the queue at most, plus the request's own work on a shared machine.
    assert max(many.admitted_s) < 8, lines
