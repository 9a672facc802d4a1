"""Indexes made ahead of training: which collections to bring up to date, and when.

A collection's first training at 10^6 embeddings spends ~25 s on this machine building its
approximate index from scratch (BENCHMARKS.md "Scale"), and a training that follows a large
import rebuilds it likewise; an update from an index that is nearly current takes ~1 s. So
between trainings every process polls for collections whose members changed since their
snapshot (``index_ahead_s``) and has the gallery bring this machine's index of them up to date
(``Gallery.prepare``) without recording anything: identify keeps answering from the trained
snapshot, and the next training only folds in what changed since.

When: once a collection's revision has stopped moving for one poll (an import finished or
paused), or after ``MAX_WAIT_POLLS`` polls of a collection that keeps changing (a long import:
one update a minute at most). Enrolling through the API takes a detection and an embedding per
image, tens of milliseconds each on a CPU, so an import of 10^6 people takes hours and the
index of all but its last minutes is ready when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Select, or_, select

from facegate.store.models import Collection

# Polls a collection whose members keep changing waits before it is brought up to date anyway.
MAX_WAIT_POLLS = 6


class AheadSchedule:
    """Which collections are due, poll by poll (not thread-safe: one poller calls it)."""

    def __init__(self, max_wait_polls: int = MAX_WAIT_POLLS) -> None:
        self._max_wait = max_wait_polls
        self._seen: dict[str, int] = {}  # revision at the last poll
        self._waited: dict[str, int] = {}  # polls since the first change not yet prepared
        self._done: dict[str, int] = {}  # revision last handed out

    def due(self, revisions: Mapping[str, int]) -> list[str]:
        """Given each candidate's revision now (collections with changes since their snapshot
        and no training pending), the collections to prepare now. A collection handed out is
        not handed out again until its revision moves."""
        for gone in set(self._seen) - set(revisions):
            self._forget(gone)
        due = []
        for collection_id, revision in sorted(revisions.items()):
            if self._done.get(collection_id) == revision:
                continue
            quiet = self._seen.get(collection_id) == revision
            waited = self._waited.get(collection_id, 0) + 1
            self._seen[collection_id] = revision
            if quiet or waited >= self._max_wait:
                self._done[collection_id] = revision
                self._waited.pop(collection_id, None)
                due.append(collection_id)
            else:
                self._waited[collection_id] = waited
        return due

    def _forget(self, collection_id: str) -> None:
        # Trained, being trained, or deleted: its next change starts from nothing.
        for state in (self._seen, self._waited, self._done):
            state.pop(collection_id, None)


def ahead_candidates() -> Select[str, int]:
    """Collections whose members changed since their snapshot (or that have none yet) and
    whose training is not pending (that training builds the index itself)."""
    return select(Collection.id, Collection.revision).where(
        ~Collection.training,
        or_(
            Collection.trained_revision.is_(None),
            Collection.trained_revision != Collection.revision,
        ),
    )
