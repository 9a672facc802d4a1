"""1:1 match against an enrollment and 1:N identify against a trained collection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from facegate.config import Settings
from facegate.engine.types import DetectedFace
from facegate.errors import NoFaceFound, NotTrained, RecipeMismatch
from facegate.service.common import Tenant, echo, get_owned
from facegate.service.decision import Candidate, OpenSetPlanner, OpenSetPolicy
from facegate.service.images import FaceReader
from facegate.service.ports import Gallery, TrainedSnapshot
from facegate.store.db import Database
from facegate.store.models import Collection, Embedding, Enrollment
from facegate.store.snapshot import SnapshotBounds
from facegate.store.vectors import stack_blobs


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
    trained: TrainedSnapshot
    policy: OpenSetPolicy


class Recognition:
    def __init__(
        self,
        database: Database,
        reader: FaceReader,
        settings: Settings,
        gallery: Gallery,
        planner: OpenSetPlanner,
    ) -> None:
        self._db = database
        self._reader = reader
        self._settings = settings
        self._gallery = gallery
        self._planner = planner

    def match(
        self, tenant: Tenant, enrollment_id: str, image: bytes, threshold: float | None = None
    ) -> list[EmbeddingMatch]:
        """The face's score against every stored embedding of the enrollment made by the running
        recipe, in enrolled order."""
        limit = self._settings.match_threshold if threshold is None else threshold
        recipe = self._reader.engine.recipe
        with self._db.reading() as session:
            enrollment = get_owned(session, Enrollment, enrollment_id, tenant)
            blobs = session.scalars(
                select(Embedding.vector)
                .where(Embedding.enrollment_id == enrollment.id, Embedding.recipe == recipe.key)
                .order_by(Embedding.position)
            ).all()
            if not blobs:
                held = session.execute(
                    select(Embedding.recipe, func.count())
                    .where(Embedding.enrollment_id == enrollment.id)
                    .group_by(Embedding.recipe)
                ).all()
                if held:
                    raise RecipeMismatch.holding(
                        f"enrollment {echo(enrollment.id)!r}",
                        {str(r): int(n) for r, n in held},
                        recipe.key,
                        "Add its images again on this server (PUT /v1/enroll)",
                    )
        gallery = stack_blobs(list(blobs), recipe.dimension)
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
        wanted = top_k or 1
        found = self._gallery.search(snapshot.trained, engine.recipe.dimension, descriptors, wanted)
        results = []
        for face, hits in zip(faces, found, strict=True):
            scores = engine.calibration.score(np.array([h.distance for h in hits], np.float32))
            ranked = [
                Candidate(h.label, h.name, float(s))
                for h, s in zip(hits, np.atleast_1d(scores), strict=True)
            ]
            results.append(
                Identification(
                    face=face,
                    identified=snapshot.policy.decide(ranked),
                    score=ranked[0].score if ranked else 0.0,
                    unknown_probability=snapshot.policy.unknown_probability(
                        hits[0].distance if hits else None, ranked[0].score if ranked else 0.0
                    ),
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
            plan = self._planner.effective(collection)
            assert plan is not None  # trained, checked above
            policy = self._planner.policy(plan)
            bounds = SnapshotBounds(
                collection.id,
                collection.trained_revision,
                collection.trained_watermark or 0,
                self._reader.engine.recipe.key,
            )
            trained = TrainedSnapshot(
                bounds, collection.snapshot_version, collection.index_name, plan.embeddings
            )
            return _Snapshot(trained, policy)
