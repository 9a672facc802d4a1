"""When a collection's index is prepared ahead of training (service/ahead.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from facegate.config import Settings
from facegate.service.ahead import MAX_WAIT_POLLS, AheadSchedule


def test_a_collection_is_due_once_its_revision_stays_put_for_a_poll() -> None:
    schedule = AheadSchedule()
    assert schedule.due({"a": 3}) == []
    assert schedule.due({"a": 3}) == ["a"]
    assert schedule.due({"a": 3}) == []  # handed out: not again at this revision
    assert schedule.due({"a": 4}) == []
    assert schedule.due({"a": 4}) == ["a"]


def test_a_collection_that_keeps_changing_is_due_after_the_longest_wait() -> None:
    schedule = AheadSchedule()
    due = [schedule.due({"a": revision}) for revision in range(2 * MAX_WAIT_POLLS)]
    assert [i for i, d in enumerate(due) if d] == [MAX_WAIT_POLLS - 1, 2 * MAX_WAIT_POLLS - 1]


def test_a_collection_no_longer_a_candidate_starts_afresh() -> None:
    schedule = AheadSchedule()
    schedule.due({"a": 1, "b": 1})
    assert schedule.due({"a": 1, "b": 1}) == ["a", "b"]
    assert schedule.due({"b": 1}) == []  # a was trained (or deleted)
    assert schedule.due({"a": 1}) == []  # a changed again, from nothing: seen once
    assert schedule.due({"a": 1}) == ["a"]


def test_the_poll_interval_refuses_what_is_not_a_non_negative_number() -> None:
    assert Settings(index_ahead_s=0).index_ahead_s == 0  # off
    for bad in (-1, "soon"):
        with pytest.raises(ValidationError, match="index_ahead_s"):
            Settings(index_ahead_s=bad)
