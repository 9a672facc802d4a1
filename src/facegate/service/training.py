"""Training a collection = snapshotting its members' embeddings, in the background.

A snapshot is what identify searches: the collection's revision and an embedding watermark
(store/snapshot.py), recorded with the index the gallery built for it. A change that commits
after the revision was read makes the collection ``stale`` rather than being half-included.

The same transaction records what identify's open-set decision needs (service/decision.py): the
snapshot's size in enrollments and embeddings of the running recipe, and the threshold on the
score that holds the target false-positive identification rate at that size, so identify does
no extra work per request. A size at which that threshold leaves a low expected TPIR is warned
about in the log and in the collection's listing.

Training is a job in the database, shared by every process on it. ``training`` says a job is
pending; ``training_owner`` and ``training_lease_until`` say which process holds it and until
when. The process asked to train claims the job at once and renews its lease by heartbeat while
it runs; every process also sweeps now and then for jobs whose lease has expired (their owner
died, or they were never claimed) and claims them. A claim is one conditional UPDATE whose
WHERE says "the lease is free or expired", checked by its row count: SQLite runs writers one at
a time and PostgreSQL re-checks the WHERE under the row's lock, so two processes never both win.
The sweep's candidates are read ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that sweepers pass
over each other's rows instead of queueing on them. Should a lease lapse while its owner still
runs (a stall longer than the lease), two processes take the same snapshot: harmless, since the
snapshot is a function of the rows and each one is written in a single locked transaction.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session

from facegate.config import Settings
from facegate.engine.registry import Recipe
from facegate.errors import Unavailable
from facegate.priority import lower_priority
from facegate.service.ahead import AheadSchedule, ahead_candidates
from facegate.service.common import Tenant, get_owned, utcnow
from facegate.service.decision import OpenSetPlanner
from facegate.service.ports import Gallery
from facegate.store.db import Database
from facegate.store.models import Collection, Embedding
from facegate.store.snapshot import SnapshotBounds, prune_removals

log = logging.getLogger("facegate.training")


class TrainingStatus(StrEnum):
    UNTRAINED = "untrained"
    TRAINING = "training"
    READY = "ready"
    STALE = "stale"


def status_of(collection: Collection) -> TrainingStatus:
    if collection.training:
        return TrainingStatus.TRAINING
    if collection.trained_revision is None:
        return TrainingStatus.UNTRAINED
    if collection.trained_revision == collection.revision:
        return TrainingStatus.READY
    return TrainingStatus.STALE


# Collections claimed per sweep: a bound on one transaction, not on throughput (the next sweep
# takes the rest).
SWEEP_BATCH = 32


# How long a replaced index outlives the training that replaced it: a search that read the old
# snapshot just before the new one was recorded opens the old index within milliseconds.
PREVIOUS_INDEX_GRACE_S = 30.0


def process_id() -> str:
    """This process's name as a lease owner: host and pid say who, the random part tells apart
    a restarted process that got the same pid (its old leases must still expire)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Trainer:
    def __init__(
        self,
        database: Database,
        planner: OpenSetPlanner,
        recipe: Recipe,
        gallery: Gallery,
        settings: Settings,
        *,
        owner: str | None = None,
    ) -> None:
        self._db = database
        self._planner = planner
        self._recipe = recipe  # the running recipe: the only embeddings identify searches
        self._gallery = gallery
        self._settings = settings
        self.owner = owner or process_id()
        self._lease = timedelta(seconds=self._settings.training_lease_s)
        # One worker: serial jobs never fight over the same rows.
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="facegate-train", initializer=lower_priority
        )
        self._closed = False
        self._stopping = threading.Event()
        # Jobs this process holds (queued or running): the heartbeat renews exactly these.
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._background: threading.Thread | None = None
        # Indexes replaced by a training, to discard once no search can still be opening them:
        # (when, collection id, index name). Kept until then, not one more training, so a
        # deletion's vectors leave the disk within a grace period of the next training.
        self._replaced: list[tuple[float, str, str]] = []
        self._replaced_lock = threading.Lock()
        self._ahead = AheadSchedule()

    def request(self, tenant: Tenant, collection_id: str) -> str:
        """Mark the collection as training, claim its job and queue it; returns at once.

        A job another live process already holds is left to it (it snapshots the rows as they
        are when it runs, this request's state included)."""
        self.ensure_open()
        with self._db.transaction() as session:
            collection = get_owned(session, Collection, collection_id, tenant)
            claimed = self.mark(session, collection)
        self.queue_if_claimed(collection.id, claimed)
        return collection.id

    def mark(self, session: Session, collection: Collection) -> bool:
        """Mark ``collection`` as training and claim its job, in the caller's transaction;
        whether this process holds the job (then :meth:`queue_if_claimed` after the commit).

        One transaction for both: marked and claimed apart, a job of this process finishing in
        between cleared the flag, the claim found nothing to take, and the collection stayed
        stale with no job queued (seen as a hang in eval ident)."""
        collection.training = True
        collection.train_requests += 1
        session.flush()
        return not self._closed and self._claim_in(session, collection.id, utcnow())

    def queue_if_claimed(self, collection_id: str, claimed: bool) -> None:
        """After the commit of :meth:`mark`: queue the job this process claimed."""
        if claimed:
            self._queue(collection_id)
        elif self._closed:
            self._deferred(collection_id)
        else:
            log.info("training job held by another process", extra={"collection_id": collection_id})

    def ensure_open(self) -> None:
        if self._closed:
            raise Unavailable("the server is shutting down; retry in a moment")

    def start(self) -> None:
        """The background thread: heartbeats for held jobs and, when enabled, the sweeper."""
        if self._background is not None:
            return
        self._background = threading.Thread(
            target=self._background_loop, name="facegate-train-lease", daemon=True
        )
        self._background.start()

    def resume_interrupted(self) -> int:
        """Claim and queue the jobs whose lease is free or expired (a stopped or dead process's);
        the number queued."""
        return self.sweep()

    def sweep(self) -> int:
        """Claim every job whose lease is free or expired, up to a batch, and queue them."""
        now = utcnow()
        with self._db.transaction() as session:
            # SKIP LOCKED (PostgreSQL; SQLite ignores it and serialises writers): rows another
            # sweeper is claiming right now are passed over, not waited on.
            candidates = session.scalars(sweep_candidates(now)).all()
            claimed = [cid for cid in candidates if self._claim_in(session, cid, now)]
        for collection_id in claimed:
            self._queue(collection_id)
        if claimed:
            log.info("claimed training jobs", extra={"collections": claimed, "owner": self.owner})
        return len(claimed)

    def claim(self, collection_id: str) -> bool:
        """Take the job's lease if it is free, expired or already this process's; atomic."""
        with self._db.transaction() as session:
            return self._claim_in(session, collection_id, utcnow())

    def renew(self) -> int:
        """Extend the leases of the jobs this process holds (the heartbeat); how many were."""
        with self._held_lock:
            held = sorted(self._held)
        if not held:
            return 0
        with self._db.transaction() as session:
            result = session.execute(
                update(Collection)
                .where(Collection.id.in_(held), Collection.training_owner == self.owner)
                .values(training_lease_until=utcnow() + self._lease)
                .execution_options(synchronize_session=False)
            )
        return _rowcount(result)

    def held(self) -> set[str]:
        with self._held_lock:
            return set(self._held)

    def _claim_in(self, session: Session, collection_id: str, now: datetime) -> bool:
        # The WHERE is the whole claim: evaluated under the write lock, so exactly one
        # concurrent claimer sees a row count of 1.
        result = session.execute(
            update(Collection)
            .where(
                Collection.id == collection_id,
                Collection.training,
                or_(_lease_free(now), Collection.training_owner == self.owner),
            )
            .values(training_owner=self.owner, training_lease_until=now + self._lease)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    def train(self, collection_id: str) -> bool:
        """Take the snapshot now (the job itself). False when the collection no longer exists.

        The snapshot is the collection's revision and the highest embedding id (see
        store/snapshot.py), read in that order: a change committing in between then lands on
        the safe side (included, and the collection stale), never recorded as included while
        missing. The gallery builds what searching it needs (an approximate index for a large
        collection: the slow part) before anything is written, so the current snapshot answers
        until the new one is recorded in one short transaction."""
        self._db.refresh_statistics()  # after a bulk load: the snapshot's reads need them
        with self._db.reading() as session:
            collection = session.get(Collection, collection_id)
            if collection is None:
                return False
            revision, requests, previous, previous_revision = (
                collection.revision,
                collection.train_requests,
                collection.index_name,
                collection.trained_revision,
            )
            watermark = _watermark(session)
        bounds = SnapshotBounds(collection_id, revision, watermark, self._recipe.key)
        built = self._gallery.build(bounds, self._recipe.dimension, previous)
        index = built.name
        embeddings, people = built.embeddings, built.people
        if embeddings is None or people is None:
            # Counted before the write below, not inside it: a count of 10^6 members takes ~2 s,
            # which would hold SQLite's write lock (every enrollment and deletion waiting). A
            # deletion committed meanwhile makes the figures one high; they only size the
            # threshold.
            with self._db.reading() as session:
                embeddings, people = session.execute(
                    bounds.select(func.count(), func.count(func.distinct(Embedding.enrollment_id)))
                ).one()
        with self._db.transaction() as session:
            collection = session.get(Collection, collection_id, with_for_update=True)
            if collection is None:
                self._gallery.retire(collection_id, ())
                return False
            plan = self._planner.plan(
                people=int(people), embeddings=int(embeddings), unknowns=collection.unknowns
            )
            collection.trained_people = plan.people
            collection.trained_embeddings = plan.embeddings
            collection.identify_threshold = plan.threshold
            collection.identify_target_fpir = plan.target_fpir
            collection.identify_expected_tpir = plan.expected_tpir
            collection.identify_warning = plan.warning
            collection.trained_revision = revision
            collection.trained_watermark = watermark
            collection.trained_at = utcnow()
            collection.snapshot_version += 1
            collection.index_name = index
            collection.training_owner = None
            collection.training_lease_until = None
            # Asked again while this job ran (by another process, whose claim failed): the
            # flag stays and the free lease lets a sweep run the job once more.
            collection.training = collection.train_requests != requests
            if previous_revision is not None:
                # Not through this snapshot's revision: a training that overlapped this one
                # (a lapsed lease) may still be updating the previous snapshot's index.
                prune_removals(session, collection_id, previous_revision)
        # The previous index stays a moment: another process may be opening it right now (the
        # processes that have it open keep reading their copy until they see the new one).
        self._gallery.retire(collection_id, [name for name in (index, previous) if name])
        if previous is not None and previous != index:
            self._replace_later(collection_id, previous)
        extra = {
            "collection_id": collection_id,
            "people": plan.people,
            "embeddings": plan.embeddings,
            "identify_threshold": plan.threshold,
            "target_fpir": plan.target_fpir,
            "expected_tpir": plan.expected_tpir,
            "index": index,
        }
        if plan.warning:
            log.warning("collection trained: %s", plan.warning, extra=extra)
        else:
            log.info("collection trained", extra=extra)
        return True

    def prepare(self, collection_id: str) -> None:
        """Have the gallery make the next training's start now (service/ahead.py), as the
        training would read the collection, recording nothing. Not while a training is
        pending: that one builds it."""
        with self._db.reading() as session:
            collection = session.get(Collection, collection_id)
            if collection is None or collection.training:
                return
            bounds = SnapshotBounds(
                collection_id, collection.revision, _watermark(session), self._recipe.key
            )
        self._db.refresh_statistics()
        superseded = self._gallery.prepare(bounds, self._recipe.dimension)
        if superseded is not None:
            self._replace_later(collection_id, superseded)

    def poll_ahead(self) -> int:
        """Queue :meth:`prepare` for the collections due (service/ahead.py); how many."""
        with self._db.reading() as session:
            rows = session.execute(ahead_candidates()).all()
        revisions = {collection_id: int(revision) for collection_id, revision in rows}
        due = self._ahead.due(revisions)
        for collection_id in due:
            try:
                self._executor.submit(self._run_prepare, collection_id)
            except RuntimeError:
                return 0  # shutting down
        return len(due)

    def _run_prepare(self, collection_id: str) -> None:
        try:
            self.prepare(collection_id)
        except Exception:
            # Nothing is lost: the next training builds what the failed preparation did not.
            log.exception("preparing an index ahead failed", extra={"collection_id": collection_id})

    def _replace_later(self, collection_id: str, name: str) -> None:
        with self._replaced_lock:
            self._replaced.append((time.monotonic() + PREVIOUS_INDEX_GRACE_S, collection_id, name))

    def shutdown(self) -> None:
        self._closed = True
        self._stopping.set()
        self._executor.shutdown(wait=True, cancel_futures=False)
        if self._background is not None:
            self._background.join()
            self._background = None

    def _queue(self, collection_id: str) -> Future[None] | None:
        with self._held_lock:
            self._held.add(collection_id)
        try:
            return self._executor.submit(self._run, collection_id)
        except RuntimeError:
            with self._held_lock:
                self._held.discard(collection_id)
            self._deferred(collection_id)
            return None

    def _deferred(self, collection_id: str) -> None:
        # Shut down in between: the flag stays set and the lease (if any) lapses, so another
        # process's sweep, or the next start, runs the job.
        log.warning("training deferred to another process", extra={"collection_id": collection_id})

    def _run(self, collection_id: str) -> None:
        try:
            delay = self._settings.training_test_delay_s
            if delay > 0:
                # Test-only (settings): the lease is held and renewed meanwhile.
                self._stopping.wait(delay)
            self.train(collection_id)
        except Exception:
            log.exception("training failed", extra={"collection_id": collection_id})
            with self._db.transaction() as session:
                collection = session.get(Collection, collection_id)
                if collection is not None:
                    collection.training = False
                    collection.training_owner = None
                    collection.training_lease_until = None
        finally:
            with self._held_lock:
                self._held.discard(collection_id)

    def discard_replaced(self, *, now: float | None = None) -> int:
        """Discards the replaced indexes whose grace period is over; how many."""
        now = time.monotonic() if now is None else now
        with self._replaced_lock:
            due = [entry for entry in self._replaced if entry[0] <= now]
            self._replaced = [entry for entry in self._replaced if entry[0] > now]
        for _, collection_id, name in due:
            self._gallery.discard(collection_id, name)
        return len(due)

    def _background_loop(self) -> None:
        heartbeat = self._settings.training_heartbeat_s
        sweep_every = self._settings.training_sweep_s
        ahead_every = self._settings.index_ahead_s
        tick = min(heartbeat, *(every for every in (sweep_every, ahead_every) if every > 0))
        next_sweep = time.monotonic() + sweep_every
        next_ahead = time.monotonic() + ahead_every
        while not self._stopping.wait(tick):
            # A failed round (database briefly unreachable, locked past the busy timeout) is
            # logged and retried next tick: the thread must outlive it.
            try:
                self.renew()
                self.discard_replaced()
                now = time.monotonic()
                if sweep_every > 0 and now >= next_sweep:
                    next_sweep = now + sweep_every
                    self.sweep()
                if ahead_every > 0 and now >= next_ahead:
                    next_ahead = now + ahead_every
                    self.poll_ahead()
            except Exception:
                log.exception("training lease round failed")


def sweep_candidates(now: datetime) -> Select[str]:
    """Collections whose job waits for an owner, oldest change first, rows locked as read."""
    return (
        select(Collection.id)
        .where(Collection.training, _lease_free(now))
        .order_by(Collection.updated)
        .limit(SWEEP_BATCH)
        .with_for_update(skip_locked=True)
    )


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(
        Collection.training_owner.is_(None),
        Collection.training_lease_until.is_(None),
        Collection.training_lease_until < now,
    )


def _watermark(session: Session) -> int:
    """The highest embedding id now: a snapshot holds the embeddings up to it."""
    return int(session.scalar(select(func.coalesce(func.max(Embedding.id), 0))) or 0)


def _rowcount(result: Result[Any]) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0
