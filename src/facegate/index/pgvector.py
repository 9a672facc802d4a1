"""pgvector's gallery: trained snapshots searched inside PostgreSQL (what a machine without a
snapshot's index folder answers with, index/postgres.py; every search with
``FACEGATE_POSTGRES_LOCAL_INDEX=false``).

Each recipe has a partial HNSW index over its embeddings,
``USING hnsw ((vector::vector(D)) vector_l2_ops) WHERE recipe = '...'``: the column holds
vectors of any dimension (recipes differ), an HNSW index needs one, and the partial predicate
keeps each recipe's graph apart. PostgreSQL maintains it on every insert and delete, so
training has nothing to build: a snapshot is its revision and watermark (store/snapshot.py),
and identify is one SQL statement per face — the nearest embeddings of the snapshot through the
index, grouped into the nearest enrollments with their names.

pgvector 0.6 filters after the index scan (iterative scans came in 0.8): the scan yields its
``hnsw.ef_search`` nearest rows of the whole recipe, then the snapshot's conditions drop the
others'. A collection that is most of its recipe's rows loses nothing; when too few rows
survive (a collection that is a small part of a large table) the statement runs again without
the index — exact, slower, never wrong. Snapshots below ``SMALL_SNAPSHOT`` embeddings are
searched exactly at once: a scan of their rows costs less than the index at that size.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pgvector import Vector
from sqlalchemy import text
from sqlalchemy.orm import Session

from facegate.index.gallery import refuse_other_recipes
from facegate.service.ports import BuiltIndex, GalleryHit, TrainedSnapshot
from facegate.store.db import Database
from facegate.store.snapshot import SnapshotBounds

log = logging.getLogger("facegate.index")

SMALL_SNAPSHOT = 5_000
# Nearest rows taken per enrollment asked for, and at least; the index scan's breadth.
CANDIDATES_PER_LABEL = 8
MIN_CANDIDATES = 40
# Probes lie far from every stored vector (a mate at cosine ~0.78, impostors near 0.1), which is
# hard for a graph search: on 100,000 face-like vectors, m = 16 found the true nearest for 90 %
# of probes at ef_search 100, 96 % at 200, 99 % at 400 (9 ms), 100 % at 800; m = 32 reached
# 99 % at 100 but took 2.7x as long to build.
EF_SEARCH = 400
# HNSW build parameters (pgvector's defaults) and the memory a build may use: a graph that
# does not fit is built far more slowly.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
BUILD_MEMORY = "1GB"

# Recipe keys are the registry's own (engine/zoo.py); checked anyway, since one is written into
# SQL as a literal: a partial index is only used when the query's predicate is that literal.
_RECIPE = re.compile(r"^[A-Za-z0-9@/._+-]{1,96}$")

_NEAREST = """
SELECT nearest.enrollment_id, enrollments.name, MIN(nearest.distance) AS distance
FROM (
    SELECT e.enrollment_id, {distance} AS distance
    FROM embeddings e
    JOIN collection_members m ON m.enrollment_id = e.enrollment_id
    WHERE e.recipe = {recipe} AND m.collection_id = :collection
      AND m.added_revision <= :revision AND e.id <= :watermark
    ORDER BY {distance}
    LIMIT :candidates
) AS nearest
JOIN enrollments ON enrollments.id = nearest.enrollment_id
GROUP BY nearest.enrollment_id, enrollments.name
ORDER BY distance, nearest.enrollment_id
LIMIT :k
"""


def index_name(recipe: str) -> str:
    return f"ix_embeddings_hnsw_{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def _recipe_literal(recipe: str) -> str:
    if not _RECIPE.match(recipe):
        raise ValueError(f"not a recipe key: {recipe!r}")
    return f"'{recipe}'"


class PgvectorGallery:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._indexed: set[str] = set()

    def ensure_index(self, recipe: str, dimension: int) -> None:
        """Create the recipe's HNSW index if it is missing (minutes over a large table: done
        at start-up and by training, never by a search)."""
        if recipe in self._indexed:
            return
        started = time.monotonic()
        with self._db.engine.begin() as connection:
            connection.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"))
            connection.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {index_name(recipe)} ON embeddings "
                    f"USING hnsw ((vector::vector({int(dimension)})) vector_l2_ops) "
                    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
                    f"WHERE recipe = {_recipe_literal(recipe)}"
                )
            )
        self._indexed.add(recipe)
        log.info(
            "HNSW index ready",
            extra={"recipe": recipe, "seconds": round(time.monotonic() - started, 2)},
        )

    def open(self, recipe: str, dimension: int) -> None:
        self.ensure_index(recipe, dimension)

    def search(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        bounds = snapshot.bounds
        small = snapshot.size is not None and snapshot.size < SMALL_SNAPSHOT
        results = []
        with self._db.reading() as session:
            for query in queries:
                hits = [] if small else self._nearest(session, bounds, dimension, query, k, True)
                if len(hits) < k:
                    # Too few survived the index scan's filter, or a small snapshot: exact.
                    hits = self._nearest(session, bounds, dimension, query, k, False)
                if not hits:
                    refuse_other_recipes(session, bounds)
                results.append(hits)
        return results

    def _nearest(
        self,
        session: Session,
        bounds: SnapshotBounds,
        dimension: int,
        query: NDArray[np.float32],
        k: int,
        indexed: bool,
    ) -> list[GalleryHit]:
        candidates = max(MIN_CANDIDATES, CANDIDATES_PER_LABEL * k)
        if indexed:
            # The index's own expression: anything else and the planner cannot use it.
            distance = f"(e.vector::vector({int(dimension)})) <-> CAST(:query AS vector)"
            session.execute(text(f"SET LOCAL hnsw.ef_search = {max(EF_SEARCH, candidates)}"))
        else:
            distance = "e.vector <-> CAST(:query AS vector)"
        statement = text(_NEAREST.format(distance=distance, recipe=_recipe_literal(bounds.recipe)))
        rows = session.execute(
            statement,
            {
                "query": Vector._to_db(query),
                "collection": bounds.collection_id,
                "revision": bounds.revision,
                "watermark": bounds.watermark,
                "candidates": candidates,
                "k": k,
            },
        ).all()
        return [GalleryHit(str(label), name, float(d)) for label, name, d in rows]

    def build(self, bounds: SnapshotBounds, dimension: int, previous: str | None) -> BuiltIndex:
        """Nothing to build per snapshot: the recipe's index is kept up to date by PostgreSQL."""
        self.ensure_index(bounds.recipe, dimension)
        return BuiltIndex(None)

    def prepare(self, bounds: SnapshotBounds, dimension: int) -> str | None:
        """Nothing to make ahead: PostgreSQL keeps the recipe's index up to date itself."""
        return None

    def retire(self, collection_id: str, keep: Sequence[str]) -> None:
        """No files: nothing to forget."""

    def discard(self, collection_id: str, name: str) -> None:
        """No files: nothing to forget."""
