"""1:1 match against an enrollment and 1:N identify against a trained collection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from facegate.config import Settings
from facegate.engine.types import DetectedFace
from facegate.errors import NoFaceFound, NotTrained
from facegate.index import ExactIndex, IndexCache
from facegate.index.cache import CachedIndex
from facegate.service.common import Tenant, echo, get_owned
from facegate.service.decision import Candidate, OpenSetPolicy, unknown_probability
from facegate.service.images import FaceReader
from facegate.store.db import Database
from facegate.store.models import Collection, Embedding, Enrollment, TrainedEmbedding
from facegate.store.vectors import stack_blobs

DESCRIPTOR_SIZE = 128
MAX_TOP_K = 100


@dataclass(frozen=True)
class EmbeddingMatch:
    score: float
    match: bool


@dataclass(frozen=True)
class Identification:
    face: DetectedFace
    identified: Candidate | None
    score: float  # the best score found, identified or not
    unknown_probability: float
    candidates: list[Candidate]  # best first, as many as asked for


@dataclass(frozen=True)
class _Snapshot:
    collection_id: str
    version: int
    policy: OpenSetPolicy


class Recognition:
    def __init__(
        self, database: Database, reader: FaceReader, settings: Settings, cache: IndexCache
    ) -> None:
        self._db = database
        self._reader = reader
        self._settings = settings
        self._cache = cache

    def match(
        self, tenant: Tenant, enrollment_id: str, image: bytes, threshold: float | None = None
    ) -> list[EmbeddingMatch]:
        """The face's score against every stored embedding of the enrollment, in enrolled order."""
        limit = self._settings.match_threshold if threshold is None else threshold
        with self._db.reading() as session:
            enrollment = get_owned(session, Enrollment, enrollment_id, tenant)
            blobs = session.scalars(
                select(Embedding.vector)
                .where(Embedding.enrollment_id == enrollment.id)
                .order_by(Embedding.position)
            ).all()
        gallery = stack_blobs(list(blobs), DESCRIPTOR_SIZE)
        decoded = self._reader.decode("img", image)
        _, query = self._reader.largest_face("img", decoded)
        scores = self._reader.engine.similarities(query, gallery)
        return [EmbeddingMatch(float(s), bool(s >= limit)) for s in scores]

    def identify(
        self,
        tenant: Tenant,
        collection_id: str,
        image: bytes,
        *,
        all_faces: bool = False,
        top_k: int | None = None,
    ) -> list[Identification]:
        """One result per face: the largest only, or every face (largest first) on request."""
        snapshot = self._trained_snapshot(tenant, collection_id)
        decoded = self._reader.decode("img", image)
        engine = self._reader.engine
        # The answer carries no quality figures: they would be computed for nothing.
        faces = engine.detect(decoded, largest_only=not all_faces, quality=False)
        if not faces:
            raise NoFaceFound("img: no face found")
        descriptors = engine.embed(decoded, faces)

        cached = self._cache.get(
            snapshot.collection_id, snapshot.version, lambda: self._build(snapshot)
        )
        # The runner-up is always needed for the margin rule, even when top_k is 1.
        wanted = max(top_k or 1, 2)
        results = []
        for face, hits in zip(faces, cached.index.search(descriptors, wanted), strict=True):
            scores = engine.calibration.score(np.array([h.distance for h in hits], np.float32))
            ranked = [
                Candidate(h.label, cached.names.get(h.label), float(s))
                for h, s in zip(hits, np.atleast_1d(scores), strict=True)
            ]
            results.append(
                Identification(
                    face=face,
                    identified=snapshot.policy.decide(ranked),
                    score=ranked[0].score if ranked else 0.0,
                    unknown_probability=unknown_probability(ranked),
                    candidates=ranked[: top_k or 0],
                )
            )
        return results

    def _trained_snapshot(self, tenant: Tenant, collection_id: str) -> _Snapshot:
        with self._db.reading() as session:
            collection = get_owned(session, Collection, collection_id, tenant)
            if collection.trained_revision is None:
                if collection.training:
                    raise NotTrained(
                        f"collection {echo(collection.id)!r} is being trained for the first "
                        "time; retry in a moment"
                    )
                raise NotTrained(
                    f"collection {echo(collection.id)!r} has not been trained: call POST /v1/train "
                    "with its collection_id, then retry"
                )
            policy = OpenSetPolicy.for_collection(self._settings, unknowns=collection.unknowns)
            return _Snapshot(collection.id, collection.snapshot_version, policy)

    def _build(self, snapshot: _Snapshot) -> CachedIndex:
        with self._db.reading() as session:
            version = _current_version(session, snapshot.collection_id)
            rows = session.execute(
                select(Embedding.enrollment_id, Embedding.vector, Enrollment.name)
                .join(TrainedEmbedding, TrainedEmbedding.embedding_id == Embedding.id)
                .join(Enrollment, Enrollment.id == Embedding.enrollment_id)
                .where(TrainedEmbedding.collection_id == snapshot.collection_id)
            ).all()
        labels = [row[0] for row in rows]
        vectors = stack_blobs([row[1] for row in rows], DESCRIPTOR_SIZE)
        names = {row[0]: row[2] for row in rows}
        return CachedIndex(version=version, index=ExactIndex(vectors, labels), names=names)


def _current_version(session: Session, collection_id: str) -> int:
    version = session.scalar(
        select(Collection.snapshot_version).where(Collection.id == collection_id)
    )
    return int(version) if version is not None else -1
