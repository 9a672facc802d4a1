"""The in-process gallery: a collection's trained snapshot, read from the store, searched in memory.

It implements the service's :class:`~facegate.service.ports.Gallery` port. Only embeddings of the
running recipe are loaded; a snapshot that holds embeddings of other recipes only is refused with
a 409 that says which recipe it holds and what to do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from facegate.errors import RecipeMismatch
from facegate.index.cache import CachedIndex, IndexCache
from facegate.index.exact import ExactIndex
from facegate.service.ports import GalleryHit
from facegate.store.db import Database
from facegate.store.models import Collection, Embedding, Enrollment, TrainedEmbedding
from facegate.store.vectors import stack_blobs


class SnapshotGallery:
    def __init__(self, database: Database, cache: IndexCache) -> None:
        self._db = database
        self._cache = cache

    def search(
        self,
        collection_id: str,
        snapshot_version: int,
        recipe: str,
        dimension: int,
        queries: NDArray[np.float32],
        k: int,
    ) -> list[list[GalleryHit]]:
        cached = self._cache.get(
            f"{collection_id}/{recipe}",
            snapshot_version,
            lambda: self._build(collection_id, recipe, dimension),
        )
        return [
            [GalleryHit(h.label, cached.names.get(h.label), h.distance) for h in hits]
            for hits in cached.index.search(queries, k)
        ]

    def _build(self, collection_id: str, recipe: str, dimension: int) -> CachedIndex:
        with self._db.reading() as session:
            version = session.scalar(
                select(Collection.snapshot_version).where(Collection.id == collection_id)
            )
            snapshot = (
                select(Embedding.enrollment_id, Embedding.vector, Enrollment.name, Embedding.recipe)
                .join(TrainedEmbedding, TrainedEmbedding.embedding_id == Embedding.id)
                .join(Enrollment, Enrollment.id == Embedding.enrollment_id)
                .where(TrainedEmbedding.collection_id == collection_id)
            )
            rows = session.execute(snapshot.where(Embedding.recipe == recipe)).all()
            if not rows:
                others = session.execute(
                    select(Embedding.recipe, func.count())
                    .join(TrainedEmbedding, TrainedEmbedding.embedding_id == Embedding.id)
                    .where(TrainedEmbedding.collection_id == collection_id)
                    .group_by(Embedding.recipe)
                ).all()
                if others:
                    raise RecipeMismatch.holding(
                        f"the trained snapshot of collection {collection_id!r}",
                        {r: int(n) for r, n in others},
                        recipe,
                        "Enroll its people again on this server (PUT /v1/enroll with their "
                        "images) and retrain it (POST /v1/train)",
                    )
        labels = [row[0] for row in rows]
        vectors = stack_blobs([row[1] for row in rows], dimension)
        names = {row[0]: row[2] for row in rows}
        return CachedIndex(
            version=int(version) if version is not None else -1,
            index=ExactIndex(vectors, labels),
            names=names,
        )
