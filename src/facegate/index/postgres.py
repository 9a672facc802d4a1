"""PostgreSQL's gallery: the in-process index of each machine in front of pgvector.

On the descriptors this service stores, pgvector 0.6's HNSW cannot give what a large
collection needs: at 10^6 it found the true nearest for 59 % of real probes in 52 ms (ef_search
400; BENCHMARKS.md "Scale"), because a probe lies far from everything but its mate's vectors
and a graph search loses its way. The in-process index (index/gallery.py: faiss fast-scan
codes of every row, built at train time, its candidates ranked exactly) found it for all
735 in 1.5-2.4 ms (runs 26-28). So on PostgreSQL a snapshot is searched:

- below ``settings.exact_search_limit`` embeddings: exactly, in process, as on SQLite (its rows
  read once per snapshot version);
- above it, with the snapshot's index folder in this machine's data folder: through it, ranked
  from its local rows (exact vectors, enrollment ids and names), with one small statement to
  PostgreSQL for the rows deleted since the snapshot, sent before the scan and read after it
  (where that log cannot say, the candidates are re-read: rows, memberships and names);
- above it, without that folder (another machine trained the snapshot, or this one just
  started): with pgvector in the database — one SQL statement, the HNSW index — while a
  background thread builds the folder here from the store, starting from this machine's
  newest index of the collection when the deletion log reaches back to it (the changes only),
  so that the next searches use it. The processes of one machine build it once (a file lock)
  and share its memory-mapped arrays.

The trainer builds its folder before it records the snapshot (index/gallery.py), so on the
machine that trained nothing waits; the database stays the source of truth everywhere: an
index only proposes candidates, and a deletion is masked at once by the deletion log that
every search reads.
``FACEGATE_POSTGRES_LOCAL_INDEX=false`` searches every snapshot with pgvector alone
(index/pgvector.py), for machines without a data folder worth writing to.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.index import ann
from facegate.index.gallery import InProcessGallery
from facegate.index.pgvector import PgvectorGallery
from facegate.priority import lower_priority
from facegate.service.ports import BuiltIndex, GalleryHit, TrainedSnapshot
from facegate.store.db import Database
from facegate.store.snapshot import SnapshotBounds

log = logging.getLogger("facegate.index")

# A build of this machine's index that failed (or found nothing to build) is tried again for
# the same snapshot after this long, not on every search.
RETRY_AFTER_S = 600.0


class PostgresGallery(InProcessGallery):
    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(database, settings)
        self._pgvector = PgvectorGallery(database)
        self._lock = threading.Lock()
        # Index name -> (snapshot, dimension) waiting for this machine's build, and when each
        # name was last taken up.
        self._pending: dict[str, tuple[TrainedSnapshot, int]] = {}
        self._attempted: dict[str, float] = {}
        self._worker: threading.Thread | None = None

    def open(self, recipe: str, dimension: int) -> None:
        """The recipe's HNSW index (what answers until this machine has a snapshot's folder),
        and this machine's folders of deleted collections removed."""
        self._pgvector.open(recipe, dimension)
        super().open(recipe, dimension)

    def build(self, bounds: SnapshotBounds, dimension: int, previous: str | None) -> BuiltIndex:
        self._pgvector.ensure_index(bounds.recipe, dimension)
        return super().build(bounds, dimension, previous)

    # -- search --------------------------------------------------------------------------

    def _search_exact(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        """Exact in process for a snapshot known to be small; pgvector for one that may not be
        (trained by a machine that searches with pgvector alone, or before its size was
        recorded): reading 10^6 rows into every process is not an option."""
        if snapshot.size is not None and snapshot.size < self._exact_limit:
            return super()._search_exact(snapshot, dimension, queries, k)
        return self._pgvector.search(snapshot, dimension, queries, k)

    def _search_without_index(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        self._catch_up(snapshot, dimension)
        return self._pgvector.search(snapshot, dimension, queries, k)

    # -- this machine's copy of a snapshot's index ---------------------------------------

    def _catch_up(self, snapshot: TrainedSnapshot, dimension: int) -> None:
        """Have the snapshot's index folder built here in the background (once)."""
        name = snapshot.index
        assert name is not None
        now = time.monotonic()
        with self._lock:
            for old in [n for n, at in self._attempted.items() if now - at > RETRY_AFTER_S]:
                del self._attempted[old]
            if name in self._attempted:
                return
            self._attempted[name] = now
            self._pending[name] = (snapshot, dimension)
            log.info(
                "no index here for this snapshot: pgvector answers while it is built",
                extra={"collection_id": snapshot.bounds.collection_id, "index": name},
            )
            if self._worker is None:
                # A daemon thread: a build is not worth delaying a shutdown for (one cut short
                # leaves a dot-named staging folder, removed at a later start-up).
                self._worker = threading.Thread(
                    target=self._drain, name="facegate-index-catch-up", daemon=True
                )
                self._worker.start()

    def _drain(self) -> None:
        lower_priority()
        while True:
            with self._lock:
                if not self._pending:
                    self._worker = None
                    return
                name, (snapshot, dimension) = self._pending.popitem()
            try:
                self._build_here(name, snapshot, dimension)
            except Exception:
                log.exception(
                    "building this machine's index failed; pgvector answers meanwhile",
                    extra={"index": name},
                )

    def _build_here(self, name: str, snapshot: TrainedSnapshot, dimension: int) -> None:
        collection_id = snapshot.bounds.collection_id
        with self._collection_lock(collection_id):
            if (self._root / name / ann.INDEX_FILE).is_file():
                return  # another process of this machine built it meanwhile
            if name not in self._recorded(collection_id):
                return  # a newer training replaced the snapshot: its searches ask for theirs
            started = time.monotonic()
            self._db.refresh_statistics()
            bounds = snapshot.bounds
            built = self._build(bounds, dimension, self._newest_here(bounds), name)
            if built.name is None:
                return  # shrunk below the exact limit since: pgvector answers it
            log.info(
                "this machine's index ready",
                extra={
                    "collection_id": collection_id,
                    "index": name,
                    "seconds": round(time.monotonic() - started, 2),
                },
            )
            self._retire_older(bounds)

    def _retire_older(self, bounds: SnapshotBounds) -> None:
        """This machine's folders of the collection made for earlier snapshots (not all others,
        as ``retire`` does: a training in this machine may have just written a newer one)."""
        recorded = set(self._recorded(bounds.collection_id))
        older = set()
        for path in (self._root / bounds.collection_id).iterdir():
            name = f"{bounds.collection_id}/{path.name}"
            if path.name.startswith(".") or name in recorded:
                continue  # being written, or what the collection records now
            meta = ann.read_meta(path)
            if meta is None or int(meta.get("revision", -1)) < bounds.revision:
                older.add(path)
        self._remove(older)

    def wait_for_catch_up(self, timeout_s: float) -> bool:
        """Whether the background builds finished within ``timeout_s`` (benchmarks, tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._worker is None:
                    return True
            time.sleep(0.05)
        return False
