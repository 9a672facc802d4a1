"""Training a collection = snapshotting its members' embeddings, in the background.

A snapshot is the set of embedding ids identify searches. It is taken in one transaction with
the collection row locked, so it matches exactly the revision it records: a change that commits
afterwards makes the collection ``stale`` rather than being half-included.

The same transaction records what identify's open-set decision needs (service/decision.py): the
snapshot's size in enrollments and embeddings of the running recipe, and the threshold on the
score that holds the target false-positive identification rate at that size, so identify does
no extra work per request. A size at which that threshold leaves a low expected TPIR is warned
about in the log and in the collection's listing.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from enum import StrEnum

from sqlalchemy import delete, func, insert, literal, select

from facegate.errors import Unavailable
from facegate.service.common import Tenant, get_owned, utcnow
from facegate.service.decision import OpenSetPlanner
from facegate.store.db import Database
from facegate.store.models import Collection, CollectionMember, Embedding, TrainedEmbedding

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


class Trainer:
    def __init__(self, database: Database, planner: OpenSetPlanner, recipe: str) -> None:
        self._db = database
        self._planner = planner
        self._recipe = recipe  # the running recipe: the only embeddings identify searches
        # One worker: training is cheap I/O; serial jobs never fight over the same rows.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facegate-train")
        self._closed = False

    def request(self, tenant: Tenant, collection_id: str) -> str:
        """Mark the collection as training and queue the job; returns at once."""
        self.ensure_open()
        with self._db.transaction() as session:
            collection = get_owned(session, Collection, collection_id, tenant)
            collection.training = True
        self.submit(collection.id)
        return collection.id

    def ensure_open(self) -> None:
        if self._closed:
            raise Unavailable("the server is shutting down; retry in a moment")

    def resume_interrupted(self) -> int:
        """Queue again the jobs a stopped process left marked as training."""
        with self._db.reading() as session:
            ids = session.scalars(select(Collection.id).where(Collection.training)).all()
        for collection_id in ids:
            self.submit(collection_id)
        return len(ids)

    def train(self, collection_id: str) -> bool:
        """Take the snapshot now (the job itself). False when the collection no longer exists."""
        with self._db.transaction() as session:
            collection = session.get(Collection, collection_id, with_for_update=True)
            if collection is None:
                return False
            session.execute(
                delete(TrainedEmbedding).where(TrainedEmbedding.collection_id == collection.id)
            )
            members = (
                select(literal(collection.id), Embedding.id)
                .join(CollectionMember, CollectionMember.enrollment_id == Embedding.enrollment_id)
                .where(CollectionMember.collection_id == collection.id)
            )
            session.execute(
                insert(TrainedEmbedding).from_select(["collection_id", "embedding_id"], members)
            )
            embeddings, people = session.execute(
                select(func.count(), func.count(func.distinct(Embedding.enrollment_id)))
                .select_from(TrainedEmbedding)
                .join(Embedding, Embedding.id == TrainedEmbedding.embedding_id)
                .where(
                    TrainedEmbedding.collection_id == collection.id,
                    Embedding.recipe == self._recipe,
                )
            ).one()
            plan = self._planner.plan(
                people=int(people), embeddings=int(embeddings), unknowns=collection.unknowns
            )
            collection.trained_people = plan.people
            collection.trained_embeddings = plan.embeddings
            collection.identify_threshold = plan.threshold
            collection.identify_target_fpir = plan.target_fpir
            collection.identify_expected_tpir = plan.expected_tpir
            collection.identify_warning = plan.warning
            collection.trained_revision = collection.revision
            collection.trained_at = utcnow()
            collection.snapshot_version += 1
            collection.training = False
        extra = {
            "collection_id": collection_id,
            "people": plan.people,
            "embeddings": plan.embeddings,
            "identify_threshold": plan.threshold,
            "target_fpir": plan.target_fpir,
            "expected_tpir": plan.expected_tpir,
        }
        if plan.warning:
            log.warning("collection trained: %s", plan.warning, extra=extra)
        else:
            log.info("collection trained", extra=extra)
        return True

    def shutdown(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=False)

    def submit(self, collection_id: str) -> Future[None] | None:
        """Queue a job for a collection already marked ``training`` in a committed transaction."""
        try:
            return self._executor.submit(self._run, collection_id)
        except RuntimeError:
            # Shut down in between: the flag stays set and the next start resumes the job.
            log.warning(
                "training deferred to the next start", extra={"collection_id": collection_id}
            )
            return None

    def _run(self, collection_id: str) -> None:
        try:
            self.train(collection_id)
        except Exception:
            log.exception("training failed", extra={"collection_id": collection_id})
            with self._db.transaction() as session:
                collection = session.get(Collection, collection_id)
                if collection is not None:
                    collection.training = False
