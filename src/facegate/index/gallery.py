"""The in-process gallery: trained snapshots searched in memory (the embedded SQLite default;
on PostgreSQL index/postgres.py puts it in front of pgvector).

It implements the service's :class:`~facegate.service.ports.Gallery` port two ways, by the
snapshot's size:

- Exact, below ``settings.exact_search_limit`` embeddings: the snapshot's rows read from the
  store into an :class:`ExactIndex`, cached per snapshot version (which moves with training
  only). At that size scanning them costs about a millisecond. Deleted enrollments are dropped
  from its answers by a lookup in the store, so a deletion never makes a request read the
  snapshot again; their vectors leave the process's memory when the collection is next trained.
- Approximate above it: training builds an index folder (index/ann.py: faiss fast-scan PQ
  codes of every row and a float16 copy of the vectors) in the data folder before it records the
  snapshot, so no request ever waits for a build; the next training makes the new folder from
  the previous one and what changed (removes deleted rows, adds new ones) instead of rebuilding
  it. Every process maps its arrays read-only. The folder also keeps each row's float32 vector
  and its enrollment's id and name (the index's local rows; enrollments are never renamed), so
  a search answers from the index alone but for one question to the store: which rows left the
  collection since the snapshot (the deletion log), sent before the index's scan and read after
  it — deletions act as a mask at once, without touching the index, and on PostgreSQL the round
  trip overlaps the scan instead of following it. Where the log cannot say (pruned past the
  snapshot, more than ``MAX_PENDING_REMOVALS`` since, or an index of an older release without
  local rows), the search re-reads its candidates from the store instead — rows deleted since
  are simply not found there — and ranks them exactly.

Only embeddings of the running recipe are searched; a snapshot that holds embeddings of other
recipes only is refused with a 409 that says which recipe it holds and what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from facegate.config import Settings
from facegate.errors import RecipeMismatch
from facegate.index import ann
from facegate.index.cache import CachedIndex, IndexCache
from facegate.index.exact import ExactIndex
from facegate.index.reads import IN_CHUNK, StoredRows, reads_for
from facegate.service.ports import BuiltIndex, GalleryHit, TrainedSnapshot
from facegate.store.db import Database
from facegate.store.models import (
    Collection,
    CollectionMember,
    Embedding,
    Enrollment,
    SnapshotRemoval,
)
from facegate.store.snapshot import SnapshotBounds
from facegate.store.vectors import stack_blobs

log = logging.getLogger("facegate.index")

# Candidates re-read from the store per label asked for (and at least MIN_CANDIDATES): several
# embeddings may belong to one person, and some candidates may have been deleted. The index
# has already ranked them by their float16 vectors, so few are needed; each is two lookups.
CANDIDATES_PER_LABEL = 4
MIN_CANDIDATES = 8
# Labels taken from an exact in-memory snapshot beyond those asked for, in case some of them
# were deleted since it was read.
EXACT_MARGIN = 4
# An update that would change more than this share of the index rebuilds it instead: the
# codebooks were trained on the old rows, and removed rows stay in the arrays as blank rows.
REBUILD_SHARE = 0.3
# The lock file in a collection's index folder that the processes of one machine take while
# they write an index of it: one build at a time, and a training asked while the index is being
# prepared ahead waits for that and starts from it instead of building a second one.
LOCK_FILE = ".lock"


def recipe_tag(recipe: str) -> str:
    """A short, file-name-safe tag of a recipe key (which holds '@' and '/')."""
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


class InProcessGallery:
    def __init__(self, database: Database, settings: Settings) -> None:
        self._db = database
        self._exact_limit = settings.exact_search_limit
        self._root = settings.index_dir
        self._exact = IndexCache(settings.index_cache_collections)
        self._views = ann.ViewCache(settings.index_cache_collections)
        self._reads = reads_for(database.engine.dialect.name)

    def open(self, recipe: str, dimension: int) -> None:
        """At start-up: index files are made by training and opened on first use; the folders
        of collections that no longer exist are removed (deleted while this process was down,
        or, on PostgreSQL, by another machine, whose deletion removes its own folders only),
        and so are builds abandoned half-written."""
        self.sweep_deleted_collections()
        self._remove(ann.abandoned_staging(self._root))

    def sweep_deleted_collections(self) -> None:
        if not self._root.is_dir():
            return
        folders = [p for p in self._root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        existing: set[str] = set()
        with self._db.reading() as session:
            for start in range(0, len(folders), IN_CHUNK):
                names = [p.name for p in folders[start : start + IN_CHUNK]]
                existing.update(
                    session.scalars(select(Collection.id).where(Collection.id.in_(names)))
                )
        # A collection's folder is made only after its row exists: none is mistaken for gone.
        self._remove({p for p in folders if p.name not in existing})

    # -- search (the request path) --------------------------------------------------------

    def search(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        path = self._path_for(snapshot)
        if path is None:
            return self._search_exact(snapshot, dimension, queries, k)
        try:
            view = self._views.get(path)
        except FileNotFoundError:
            return self._search_without_index(snapshot, dimension, queries, k)
        return [self._search_one(snapshot.bounds, view, dimension, q, k) for q in queries]

    def _search_without_index(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        """The snapshot names an index folder this data folder lacks: retired under a snapshot
        read a moment ago (a newer training won). Exact answers are slower, never wrong."""
        log.warning("index gone; searching exactly", extra={"index": snapshot.index})
        return self._search_exact(snapshot, dimension, queries, k)

    def _path_for(self, snapshot: TrainedSnapshot) -> Path | None:
        """The snapshot's index folder, when it has one made for the running recipe (a name
        from an older release, a usearch file, is not found and searched exactly until the
        next training replaces it)."""
        name = snapshot.index
        if name is None or not Path(name).name.startswith(recipe_tag(snapshot.bounds.recipe)):
            return None
        return self._root / name

    def _search_exact(
        self, snapshot: TrainedSnapshot, dimension: int, queries: NDArray[np.float32], k: int
    ) -> list[list[GalleryHit]]:
        bounds = snapshot.bounds
        cached = self._exact.get(
            f"{bounds.collection_id}/{bounds.recipe}",
            snapshot.version,
            lambda: self._read_exact(snapshot, dimension),
        )
        results = []
        for query in queries:
            wanted = k + EXACT_MARGIN
            while True:
                hits = cached.index.search(query[np.newaxis, :], wanted)[0]
                present = self._present(bounds, [h.label for h in hits])
                kept = [h for h in hits if h.label in present][:k]
                # Enough people still enrolled, or every label of the snapshot was looked at.
                if len(kept) >= k or len(hits) < wanted:
                    break
                wanted *= 4
            results.append(
                [GalleryHit(h.label, cached.names.get(h.label), h.distance) for h in kept]
            )
        return results

    def _present(self, bounds: SnapshotBounds, labels: list[str]) -> set[str]:
        """Which of the labels are still members: the in-memory copy of a snapshot outlives
        deletions (it is read again only when training moves the snapshot), so each answer is
        checked against the store — one lookup by primary key."""
        if not labels:
            return set()
        with self._db.reading() as session:
            return set(session.scalars(still_members(bounds.collection_id, labels)))

    def _read_exact(self, snapshot: TrainedSnapshot, dimension: int) -> CachedIndex:
        bounds = snapshot.bounds
        with self._db.reading() as session:
            rows = session.execute(
                bounds.select(Embedding.enrollment_id, Embedding.vector, Enrollment.name).join(
                    Enrollment, Enrollment.id == Embedding.enrollment_id
                )
            ).all()
            if not rows:
                refuse_other_recipes(session, bounds)
        labels = [row[0] for row in rows]
        vectors = stack_blobs([row[1] for row in rows], dimension)
        return CachedIndex(
            snapshot.version, ExactIndex(vectors, labels), {r[0]: r[2] for r in rows}
        )

    def _search_one(
        self,
        bounds: SnapshotBounds,
        view: ann.AnnIndex,
        dimension: int,
        query: NDArray[np.float32],
        k: int,
    ) -> list[GalleryHit]:
        if view.local is not None:
            local = functools.partial(
                self._search_local, bounds=bounds, view=view, query=query, k=k
            )
            answered = self._db.read_raw(local)
            if answered is not None:
                return answered
        wanted = max(MIN_CANDIDATES, CANDIDATES_PER_LABEL * k)
        while True:
            keys = view.candidates(query, wanted)
            rank = functools.partial(
                self._rank, bounds=bounds, dimension=dimension, query=query, keys=keys, k=k
            )
            hits = self._db.read_raw(rank) if len(keys) else []
            # Enough people found, or every vector of the index was a candidate.
            if len(hits) >= k or wanted >= view.live:
                return hits
            wanted *= 4

    def _search_local(
        self,
        connection: Any,
        bounds: SnapshotBounds,
        view: ann.AnnIndex,
        query: NDArray[np.float32],
        k: int,
    ) -> list[GalleryHit] | None:
        """The search answered from the index's local rows (on a connection of
        ``Database.read_raw``): the deletion log asked before the scan, its answer read after
        it; None where the log cannot say."""
        pending = self._reads.removals(connection, bounds.collection_id, bounds.revision)
        wanted = max(MIN_CANDIDATES, CANDIDATES_PER_LABEL * k)
        try:
            rows = view.candidate_rows(query, wanted)
        finally:
            removed = pending()  # always: the connection is idle again before it goes back
        if removed is None:
            return None
        while True:
            hits = _rank_local(view, rows, removed, query, k)
            # Enough people found, or every vector of the index was a candidate.
            if len(hits) >= k or wanted >= view.live:
                return hits
            wanted *= 4
            rows = view.candidate_rows(query, wanted)

    def _rank(
        self,
        connection: Any,
        bounds: SnapshotBounds,
        dimension: int,
        query: NDArray[np.float32],
        keys: NDArray[np.int64],
        k: int,
    ) -> list[GalleryHit]:
        """The candidates still in the snapshot, by exact distance, best per enrollment (on a
        connection of ``Database.read_raw``)."""
        with contextlib.closing(self._reads.cursor(connection)) as cursor:
            found = self._reads.candidates(
                cursor, [int(key) for key in keys], bounds.collection_id, dimension
            )
            mine = [i for i, recipe in enumerate(found.recipes) if recipe == bounds.recipe]
            if not mine:
                return []
            distances = np.linalg.norm(found.vectors[mine] - query[np.newaxis, :], axis=1)
            best: dict[str, float] = {}
            for row, distance in zip(mine, distances, strict=True):
                label = found.labels[row]
                best[label] = min(best.get(label, np.inf), float(distance))
            ranked = sorted(best.items(), key=lambda item: (item[1], item[0]))[:k]
            names = self._reads.names(cursor, found, [label for label, _ in ranked])
        return [GalleryHit(label, names.get(label), distance) for label, distance in ranked]

    # -- build (training, off the request path) --------------------------------------------

    def build(self, bounds: SnapshotBounds, dimension: int, previous: str | None) -> BuiltIndex:
        """Nothing below the exact limit; else an index folder for ``bounds``, with the
        snapshot's size counted from it: this machine's newest index of the collection
        (``previous``, or one prepared since) updated with what changed since its snapshot
        when it holds this recipe and most of the same rows (recorded as it is when nothing
        changed), built anew otherwise."""
        with self._collection_lock(bounds.collection_id):
            return self._build(bounds, dimension, self._newest_here(bounds) or previous, None)

    def prepare(self, bounds: SnapshotBounds, dimension: int) -> str | None:
        """The next training's start made now (service/ahead.py): an index folder for
        ``bounds`` that nothing records, unless this machine's newest one holds it already."""
        with self._collection_lock(bounds.collection_id):
            newest = self._newest_here(bounds)
            made = self._build(bounds, dimension, newest, None, ahead=True).name
        if (
            newest is None
            or made in (None, newest)
            or newest in self._recorded(bounds.collection_id)
        ):
            return None
        return newest  # an earlier prepared index: a training may be starting from it now

    def _build(
        self,
        bounds: SnapshotBounds,
        dimension: int,
        previous: str | None,
        name: str | None,
        *,
        ahead: bool = False,
    ) -> BuiltIndex:
        """``build`` from ``previous`` (this machine's newest index of the collection: the
        recorded one, one prepared since, or, when the recorded one was made on another
        machine — PostgreSQL: each keeps its own folders — this machine's own), into the
        folder ``name`` when given (a fresh name otherwise); ``ahead`` (``prepare``): nothing
        is written when ``previous`` holds ``bounds`` already, and the folder is not opened
        for searches (no snapshot records it)."""
        if not ann.fits(dimension):
            return BuiltIndex(None)
        started = time.monotonic()
        tag = recipe_tag(bounds.recipe)
        base = self._previous(bounds, previous, tag)
        if base is not None:
            change = self._changes(bounds, base)
            unchanged = not len(change.removed) and not len(change.added)
            if ahead and unchanged:
                return BuiltIndex(previous)
            live = base.live - len(change.removed) + len(change.added)
            if live < self._exact_limit:
                return BuiltIndex(None)
            same_revision = int(base.meta["revision"]) == bounds.revision
            if unchanged and same_revision and name is None and previous is not None:
                # It holds the snapshot's rows already (the index prepared ahead of a first
                # training, or a retrain with nothing new): recorded as it is, where a copy
                # took 0.8 s of 1.1 at 10^6. Made at an earlier revision, it is copied with
                # this one instead: the removals log is pruned by the revision it records.
                # A folder the snapshot already names (another machine trained it) is written
                # under that name.
                return self._built(
                    bounds, previous, base.counts(), "reused", started, ahead, opened=base
                )
            blank = len(base.keys) - base.live  # rows removed by earlier updates
            if len(change.removed) + len(change.added) + blank <= REBUILD_SHARE * max(live, 1):
                name = name or self._new_name(bounds, tag)
                counts = ann.update(
                    base,
                    self._root / name,
                    change.removed,
                    self._rows(change.added, dimension),
                    len(change.added),
                    _meta(bounds),
                )
                return self._built(bounds, name, counts, "updated", started, ahead)
        ids = self._snapshot_ids(bounds)
        if len(ids) < self._exact_limit:
            return BuiltIndex(None)
        name = name or self._new_name(bounds, tag)
        counts = ann.build(
            self._root / name,
            dimension,
            self._rows(ids, dimension),
            len(ids),
            _meta(bounds),
            training=self._training(ids, dimension),
        )
        return self._built(bounds, name, counts, "built", started, ahead)

    def _new_name(self, bounds: SnapshotBounds, tag: str) -> str:
        name = f"{bounds.collection_id}/{tag}-{secrets.token_hex(6)}"
        (self._root / name).parent.mkdir(parents=True, exist_ok=True)
        return name

    def _newest_here(self, bounds: SnapshotBounds) -> str | None:
        """The name of the collection's index folder in this data folder made for the latest
        rows at or before ``bounds`` (of its recipe, by this release), if any."""
        folder = self._root / bounds.collection_id
        if not folder.is_dir():
            return None
        best: tuple[int, int, str] | None = None
        for path in folder.glob(f"{recipe_tag(bounds.recipe)}-*"):
            meta = ann.read_meta(path)
            if meta is None:
                continue  # being retired, or an older release's folder
            made_for = (int(meta["revision"]), int(meta["watermark"]))
            if made_for[0] <= bounds.revision and made_for[1] <= bounds.watermark:
                found = (*made_for, f"{bounds.collection_id}/{path.name}")
                best = found if best is None else max(best, found)
        return None if best is None else best[2]

    @contextlib.contextmanager
    def _collection_lock(self, collection_id: str) -> Iterator[None]:
        """The collection's index folders written by one thread of this machine at a time
        (its processes share the data folder). Never nested: a second open of the file
        would wait for the first."""
        folder = self._root / collection_id
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _built(
        self,
        bounds: SnapshotBounds,
        name: str,
        counts: ann.Counts,
        mode: str,
        started: float,
        ahead: bool,
        opened: ann.AnnIndex | None = None,
    ) -> BuiltIndex:
        log.info(
            "approximate index prepared ahead (%s)" if ahead else "approximate index %s",
            mode,
            extra={
                "collection_id": bounds.collection_id,
                "vectors": counts.live,
                "seconds": round(time.monotonic() - started, 2),
            },
        )
        if not ahead:
            # Opened now, in the background, rather than by the first search of the snapshot
            # (the folder as this build already read it, when it recorded one as it was).
            self._views.preload(self._root / name, opened)
        return BuiltIndex(name, embeddings=counts.live, people=counts.labels)

    def _previous(
        self, bounds: SnapshotBounds, previous: str | None, tag: str
    ) -> ann.AnnIndex | None:
        """The previous snapshot's index when an update can start from it: the same collection
        and recipe, made by this release (it records its snapshot), for a snapshot the
        deletion log still reaches back to."""
        if previous is None or not Path(previous).name.startswith(tag):
            return None
        try:
            index = ann.load(self._root / previous)
        except (FileNotFoundError, RuntimeError, ValueError):
            log.warning("previous index unreadable; building anew", extra={"path": previous})
            return None
        meta = index.meta
        if meta.get("collection") != bounds.collection_id or meta.get("recipe") != bounds.recipe:
            return None
        if not int(meta["revision"]) <= bounds.revision or not int(meta["watermark"]) <= (
            bounds.watermark
        ):
            return None
        with self._db.reading() as session:
            logged_after = session.scalar(
                select(Collection.removals_logged_after).where(
                    Collection.id == bounds.collection_id
                )
            )
        if logged_after is not None and int(meta["revision"]) < logged_after:
            return None  # removals it still holds were pruned from the log
        if index.local is None or index.lists != ann.LISTS:
            return None  # an older release's: built anew once, with local rows and one list
        return index

    def _changes(self, bounds: SnapshotBounds, base: ann.AnnIndex) -> _Change:
        """What changed since ``base``'s snapshot: the rows added to the collection (new
        embeddings of members, and every embedding of members added since) and the logged
        removals it holds. Reads the changes only, never every member."""
        since = {
            "collection": bounds.collection_id,
            "recipe": bounds.recipe,
            "revision": bounds.revision,
            "watermark": bounds.watermark,
            "since_revision": int(base.meta["revision"]),
            "since_watermark": int(base.meta["watermark"]),
        }
        with self._db.engine.connect() as connection:
            added = [
                *connection.execute(self._reads.new_embeddings, since).all(),
                *connection.execute(self._reads.new_members, since).all(),
            ]
            logged = connection.execute(
                select(SnapshotRemoval.embedding_id).where(
                    SnapshotRemoval.collection_id == bounds.collection_id
                )
            ).scalars()
            removed = np.intersect1d(
                np.fromiter(logged, dtype=np.int64), base.held_keys(), assume_unique=True
            )
            added.sort()
            ids = np.array([row[0] for row in added], dtype=np.int64)
        return _Change(ids[~np.isin(ids, base.held_keys())], removed)

    def _snapshot_ids(self, bounds: SnapshotBounds) -> NDArray[np.int64]:
        """The snapshot's embedding ids, ascending."""
        statement = bounds.select(Embedding.id).order_by(Embedding.id)
        chunks = [
            np.fromiter((row[0] for row in chunk), dtype=np.int64, count=len(chunk))
            for chunk in self._db.driver_chunks(statement, ann.ADD_CHUNK)
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int64)

    def _training(self, ids: NDArray[np.int64], dimension: int) -> NDArray[np.float32]:
        """The vectors that train an index of the rows ``ids`` (``ann.training_rows``), read
        by id (16,384 at most). A row deleted since the ids were read is missing."""
        wanted = ids[ann.training_rows(len(ids))]
        found = [chunk.vectors for chunk in self._stored(wanted, dimension)]
        return np.concatenate(found) if found else np.zeros((0, dimension), np.float32)

    def _rows(
        self, ids: NDArray[np.int64], dimension: int
    ) -> Iterator[
        tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], Sequence[bytes]]
    ]:
        """The rows' ids, labels, vectors and texts (``row_text``) as an index takes them, a
        chunk of ``_stored`` at a time."""
        for found in self._stored(ids, dimension):
            texts = [
                row_text(enrollment_id, name)
                for enrollment_id, name in zip(found.enrollment_ids, found.names, strict=True)
            ]
            yield found.ids, label_numbers(found.enrollment_ids), found.vectors, texts

    def _stored(self, ids: NDArray[np.int64], dimension: int) -> Iterator[StoredRows]:
        """The rows of these ascending ids, in chunks of ascending ids: one chunk's rows at a
        time. A chunk of nearby ids is read as an id range, scattered ones by id; on the
        DB-API cursor (SQLAlchemy's rows and blob conversion were ~5 s of a 36 s build of
        10^6). A row deleted since the ids were read is simply missing (the index leaves a
        blank row for it)."""
        connection = self._db.engine.raw_connection()
        try:
            with contextlib.closing(self._reads.cursor(connection)) as cursor:
                for start in range(0, len(ids), ann.ADD_CHUNK):
                    wanted = ids[start : start + ann.ADD_CHUNK]
                    found = self._reads.rows(cursor, wanted, dimension)
                    yield found.where(np.isin(found.ids, wanted))
        finally:
            connection.close()

    def retire(self, collection_id: str, keep: Sequence[str]) -> None:
        """Also keeps whatever the collection records now: two trainings of one collection that
        overlapped (a lapsed lease) must not delete the index the winner recorded."""
        folder = self._root / collection_id
        if not folder.is_dir():
            return
        kept = {self._root / name for name in (*keep, *self._recorded(collection_id))}
        # Folders being written are dot-named (ann._Staging): another process's build.
        self._remove({p for p in folder.iterdir() if p not in kept and not p.name.startswith(".")})
        if not keep:
            (folder / LOCK_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: another process wrote meanwhile
                folder.rmdir()

    def discard(self, collection_id: str, name: str) -> None:
        if name not in self._recorded(collection_id):
            self._remove({self._root / name})

    def _recorded(self, collection_id: str) -> list[str]:
        with self._db.reading() as session:
            recorded = session.scalar(
                select(Collection.index_name).where(Collection.id == collection_id)
            )
        return [recorded] if recorded else []

    def _remove(self, paths: set[Path]) -> None:
        self._views.forget(paths)
        for path in paths:
            # A process that still maps its files keeps their pages until it lets go (POSIX
            # unlink). Files of older releases (*.usearch) go the same way.
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def still_members(collection_id: str, labels: Sequence[str]) -> Select[str]:
    """Which of a snapshot's labels are members still. Asking for the membership alone (not its
    revision, which the snapshot already checked) keeps it a lookup of the primary key's
    index: with the revision too, SQLite walks the collection's (collection_id,
    added_revision) index instead — every member (9 ms a search at 10^4)."""
    return select(CollectionMember.enrollment_id).where(
        CollectionMember.collection_id == collection_id,
        CollectionMember.enrollment_id.in_(labels),
    )


@dataclass(frozen=True)
class _Change:
    added: NDArray[np.int64]  # embedding ids, ascending
    removed: NDArray[np.int64]  # embedding ids the previous index holds


def row_text(enrollment_id: str, name: str | None) -> bytes:
    """What an index keeps of a row's enrollment: its id, then its name after a NUL (an id
    holds none, a name is never empty)."""
    return enrollment_id.encode() if name is None else f"{enrollment_id}\0{name}".encode()


def read_row_text(text: bytes) -> tuple[str, str | None]:
    """``row_text``'s enrollment id and name."""
    enrollment_id, separator, name = text.decode().partition("\0")
    return enrollment_id, name if separator else None


def _rank_local(
    view: ann.AnnIndex,
    rows: NDArray[np.int64],
    removed: NDArray[np.int64],
    query: NDArray[np.float32],
    k: int,
) -> list[GalleryHit]:
    """The candidate rows not ``removed``, by exact distance, best per enrollment."""
    assert view.local is not None  # the caller checked
    if len(removed):
        rows = rows[~np.isin(view.keys[rows], removed)]
    vectors = view.local.vectors(rows)
    # A zeroed row was removed by an update that shares this index's files (ann._LocalFiles):
    # deleted, whatever the log says now; never ranked at a distance it does not have.
    written = vectors.any(axis=1)
    rows, vectors = rows[written], vectors[written]
    if not len(rows):
        return []
    distances = np.linalg.norm(vectors - query[np.newaxis, :], axis=1)
    best: dict[str, tuple[float, str | None]] = {}
    for text, distance in zip(view.local.texts(rows), distances, strict=True):
        label, name = read_row_text(text)
        if label not in best or distance < best[label][0]:
            best[label] = (float(distance), name)
    ranked = sorted(best.items(), key=lambda item: (item[1][0], item[0]))[:k]
    return [GalleryHit(label, name, distance) for label, (distance, name) in ranked]


def _meta(bounds: SnapshotBounds) -> dict[str, int | str]:
    """What an index records of its snapshot: where the next update reads changes from."""
    return {
        "collection": bounds.collection_id,
        "recipe": bounds.recipe,
        "revision": bounds.revision,
        "watermark": bounds.watermark,
    }


def label_numbers(enrollment_ids: Sequence[str]) -> NDArray[np.int64]:
    """A 64-bit number per enrollment id, the same in every call and process (FNV-1a over the
    id's UTF-8 bytes, eight at a time, vectorised; the zero padding after an id is skipped, so
    the number does not depend on the longest id beside it): what an index counts people by.
    Two ids of one length that differ in one 8-byte word never collide (each step is a
    bijection); any two collide with a chance of about 2^-64, which would make a count of
    people one low."""
    if not enrollment_ids:
        return np.zeros(0, np.int64)
    encoded = [i.encode() for i in enrollment_ids]
    width = -(-max(len(e) for e in encoded) // 8) * 8
    words = np.array(encoded, dtype=f"S{width}").view(np.uint64).reshape(len(encoded), -1)
    numbers = np.full(len(encoded), 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in words.T:
            # Ids hold no NUL bytes: a zero word is padding.
            numbers = np.where(column != 0, (numbers ^ column) * np.uint64(0x100000001B3), numbers)
    return numbers.view(np.int64)


def refuse_other_recipes(session: Session, bounds: SnapshotBounds) -> None:
    """No rows of the running recipe: a 409 naming what the snapshot holds, if anything."""
    others = session.execute(
        select(Embedding.recipe, func.count())
        .select_from(Embedding)
        .join(CollectionMember, CollectionMember.enrollment_id == Embedding.enrollment_id)
        .where(
            CollectionMember.collection_id == bounds.collection_id,
            CollectionMember.added_revision <= bounds.revision,
            Embedding.id <= bounds.watermark,
        )
        .group_by(Embedding.recipe)
    ).all()
    if others:
        raise RecipeMismatch.holding(
            f"the trained snapshot of collection {bounds.collection_id!r}",
            {r: int(n) for r, n in others},
            bounds.recipe,
            "Enroll its people again on this server (PUT /v1/enroll with their "
            "images) and retrain it (POST /v1/train)",
        )
