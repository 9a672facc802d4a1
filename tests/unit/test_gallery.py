"""The in-process gallery: exact below the limit, an IVF index folder built at train time above it,
deletions masked at once, additions and deletions folded in by the next training."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import faiss
import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import TextClause, delete, func, insert, literal, select, text
from sqlalchemy.dialects import sqlite

from facegate.api.app import create_app
from facegate.config import Settings
from facegate.errors import RecipeMismatch
from facegate.index import ExactIndex, ann, gallery, reads
from facegate.index.factory import make_gallery
from facegate.index.gallery import InProcessGallery, label_numbers
from facegate.index.reads import SqliteReads
from facegate.service.common import Tenant
from facegate.service.container import Services
from facegate.service.ports import GalleryHit, TrainedSnapshot
from facegate.service.training import PREVIOUS_INDEX_GRACE_S
from facegate.store.db import Database
from facegate.store.models import (
    ApiKey,
    Collection,
    CollectionMember,
    Embedding,
    Enrollment,
    SnapshotRemoval,
)
from facegate.store.snapshot import SnapshotBounds, log_removal, prune_removals
from facegate.store.vectors import to_blob

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, FakeEngine

RECIPE = "test@1/none"
DIM = 32
NOW = datetime(2026, 1, 1)


def _unit(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


class Store:
    """A real SQLite store holding one collection of ``people`` labels with random vectors."""

    def __init__(
        self,
        tmp_path: Path,
        people: int,
        *,
        limit: int,
        unit: bool = True,
        database_url: str | None = None,
    ) -> None:
        self.settings = Settings(
            data_dir=tmp_path, exact_search_limit=limit, database_url=database_url
        )
        self.database = Database.from_settings(self.settings)
        # The deployment's own choice: in process on SQLite, PostgresGallery on PostgreSQL.
        self.gallery = cast(InProcessGallery, make_gallery(self.settings, self.database))
        rng = np.random.default_rng(3)
        # Two vectors per label for the first tenth: a label is found by its closest vector.
        labels = [f"p{i:05d}" for i in range(people)] + [f"p{i:05d}" for i in range(people // 10)]
        vectors = rng.normal(size=(len(labels), DIM)).astype(np.float32)
        self.vectors = _unit(vectors) if unit else vectors
        self.labels = labels
        with self.database.transaction() as session:
            session.add(ApiKey(id="k", name="k", secret_sha256="x", created=NOW))
            session.add(
                Collection(
                    id="c",
                    owner_id="k",
                    name="c",
                    created=NOW,
                    updated=NOW,
                    revision=1,
                    snapshot_version=0,
                    training=False,
                )
            )
            session.flush()
            session.execute(
                insert(Enrollment),
                [
                    {"id": p, "owner_id": "k", "name": p.upper(), "created": NOW, "updated": NOW}
                    for p in sorted(set(labels))
                ],
            )
            session.execute(
                insert(Embedding),
                [
                    _row(label, i, v)
                    for i, (label, v) in enumerate(zip(labels, self.vectors, strict=True))
                ],
            )
            session.execute(
                insert(CollectionMember),
                [
                    {"collection_id": "c", "enrollment_id": p, "added": NOW, "added_revision": 1}
                    for p in sorted(set(labels))
                ],
            )
        self.version = 0
        # The bounds each index was built for: a snapshot that records it was taken there,
        # whatever changed since (what the deletion log is read from).
        self.built_for: dict[str, SnapshotBounds] = {}

    def bounds(self) -> SnapshotBounds:
        """The collection as it stands: its revision and the highest embedding id."""
        with self.database.reading() as session:
            revision = session.get_one(Collection, "c").revision
            watermark = session.scalar(select(func.max(Embedding.id))) or 0
        return SnapshotBounds("c", revision, watermark, RECIPE)

    def snapshot(self, index: str | None, size: int | None = None) -> TrainedSnapshot:
        self.version += 1
        bounds = self.built_for.get(index) if index is not None else None
        return TrainedSnapshot(bounds or self.bounds(), self.version, index, size)

    def build(self, previous: str | None = None) -> str | None:
        bounds = self.bounds()
        built = self.gallery.build(bounds, DIM, previous)
        if built.name is not None:
            assert (built.embeddings, built.people) == self.counted()
            self.built_for[built.name] = bounds
        return built.name

    def counted(self) -> tuple[int, int]:
        """The snapshot's embeddings and people, counted by the store."""
        with self.database.reading() as session:
            return tuple(
                session.execute(
                    self.bounds().select(
                        func.count(), func.count(func.distinct(Embedding.enrollment_id))
                    )
                ).one()
            )

    def delete(self, enrollment_ids: set[str]) -> None:
        """As the service deletes: the revision moves, the removal is logged, the rows go."""
        with self.database.transaction() as session:
            session.get_one(Collection, "c").revision += 1
            session.flush()
            for enrollment_id in enrollment_ids:
                log_removal(session, enrollment_id)
            for table in (Embedding, CollectionMember):
                session.execute(delete(table).where(table.enrollment_id.in_(enrollment_ids)))
            session.execute(delete(Enrollment).where(Enrollment.id.in_(enrollment_ids)))

    def enroll(self, label: str, vectors: NDArray[np.float32], *, member: bool = True) -> None:
        """A new enrollment with ``vectors`` (a member of the collection at a new revision)."""
        with self.database.transaction() as session:
            session.add(
                Enrollment(id=label, owner_id="k", name=label.upper(), created=NOW, updated=NOW)
            )
            session.flush()
            session.execute(insert(Embedding), [_row(label, i, v) for i, v in enumerate(vectors)])
        self.labels += [label] * len(vectors)
        self.vectors = np.concatenate([self.vectors, vectors])
        if member:
            self.add_member(label)

    def add_member(self, label: str) -> None:
        with self.database.transaction() as session:
            collection = session.get_one(Collection, "c")
            collection.revision += 1
            session.add(
                CollectionMember(
                    collection_id="c",
                    enrollment_id=label,
                    added=NOW,
                    added_revision=collection.revision,
                )
            )

    def exact(
        self, queries: NDArray[np.float32], k: int, without: frozenset[str] = frozenset()
    ) -> list[list[str]]:
        keep = [i for i, label in enumerate(self.labels) if label not in without]
        index = ExactIndex(self.vectors[keep], [self.labels[i] for i in keep])
        return [[h.label for h in hits] for hits in index.search(queries, k)]


def _row(label: str, position: int, vector: NDArray[np.float32]) -> dict[str, object]:
    return {
        "enrollment_id": label,
        "position": position,
        "vector": to_blob(vector),
        "recipe": RECIPE,
        "created": NOW,
    }


def _probes(store: Store, count: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(11)
    picked = store.vectors[rng.choice(len(store.vectors), count, replace=False)]
    return (picked + 0.05 * rng.normal(size=picked.shape)).astype(np.float32)


def _top1(found: list[list[GalleryHit]], expected: list[list[str]]) -> float:
    """The share of queries whose nearest label is exact search's."""
    return float(np.mean([f[0].label == e[0] for f, e in zip(found, expected, strict=True)]))


def test_below_the_limit_no_index_is_built_and_search_is_exact(tmp_path: Path) -> None:
    store = Store(tmp_path, 200, limit=1000)
    assert store.build() is None
    probes = _probes(store, 20)
    found = store.gallery.search(store.snapshot(None), DIM, probes, 5)
    assert [[h.label for h in hits] for hits in found] == store.exact(probes, 5)
    assert found[0][0].name == found[0][0].label.upper()


@pytest.mark.parametrize("unit", [True, False], ids=["unit", "any-length"])
def test_above_the_limit_an_index_answers_like_exact_search(tmp_path: Path, unit: bool) -> None:
    store = Store(tmp_path, 3000, limit=500, unit=unit)
    name = store.build()
    assert name is not None and (tmp_path / "index" / name / ann.INDEX_FILE).is_file()
    probes = _probes(store, 50)
    found = store.gallery.search(store.snapshot(name), DIM, probes, 5)
    expected = store.exact(probes, 5)
    # Approximate: a search visits a quarter of the lists and may miss a true nearest now
    # and then, so the figures have a margin.
    top1 = _top1(found, expected)
    recall = np.mean(
        [len({h.label for h in f} & set(e)) / 5 for f, e in zip(found, expected, strict=True)]
    )
    assert top1 >= 0.96 and recall >= 0.9
    # Candidates are ranked by their exact distances, read from the rows.
    exact_all = ExactIndex(store.vectors, store.labels).search(probes, 1)
    assert any(
        f[0].label == e[0].label and f[0].distance == pytest.approx(e[0].distance, abs=1e-5)
        for f, e in zip(found, exact_all, strict=True)
    )


def test_a_deletion_is_masked_at_once_and_folded_in_by_the_next_build(tmp_path: Path) -> None:
    store = Store(tmp_path, 3000, limit=500)
    first = store.build()
    probes = _probes(store, 30)
    before = store.gallery.search(store.snapshot(first), DIM, probes, 3)
    gone = {hits[0].label for hits in before[:10]}
    store.delete(gone)
    # The same index file, not rebuilt: the deleted rows are not found in the store.
    after = store.gallery.search(store.snapshot(first), DIM, probes, 3)
    assert not gone & {h.label for hits in after for h in hits}
    assert _top1(after, store.exact(probes, 3, without=frozenset(gone))) >= 0.9

    second = store.build(previous=first)
    assert second is not None and second != first
    # Updated, not rebuilt: the same rows, the deleted ones blanked (gone from the file).
    old, new = (ann.load(tmp_path / "index" / name) for name in (first, second))
    assert len(new.keys) == len(old.keys) and new.live == old.live - len(blanked(old, gone, store))
    removed = new.keys == ann.REMOVED
    assert set(old.keys[removed]) == blanked(old, gone, store)
    assert not new.vectors[removed].any() and new.vectors[~removed].any()
    store.gallery.retire("c", [second, first])
    files = index_folders(tmp_path / "index" / "c")
    assert files == sorted(Path(n).name for n in (first, second))
    updated = store.gallery.search(store.snapshot(second), DIM, probes, 3)
    assert not gone & {h.label for hits in updated for h in hits}
    assert _top1(updated, store.exact(probes, 3, without=frozenset(gone))) >= 0.9
    store.gallery.retire("c", [second])
    assert index_folders(tmp_path / "index" / "c") == [Path(second).name]
    store.gallery.retire("c", [])
    assert not (tmp_path / "index" / "c").exists()


def _search_ways(
    store: Store,
    snapshot: TrainedSnapshot,
    probes: NDArray[np.float32],
    k: int,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[list[GalleryHit]], list[list[GalleryHit]]]:
    """The search answered from the index's local rows (the store's candidates never read),
    and re-read from the store (the deletion log made to say nothing)."""
    read_class = type(reads.reads_for(store.database.engine.dialect.name))

    def no_reread(*_: object) -> None:
        raise AssertionError("a search with local rows re-read its candidates")

    with monkeypatch.context() as patched:
        patched.setattr(read_class, "candidates", no_reread)
        local = store.gallery.search(snapshot, DIM, probes, k)
    with monkeypatch.context() as patched:
        patched.setattr(reads, "MAX_PENDING_REMOVALS", -1)
        reread = store.gallery.search(snapshot, DIM, probes, k)
    return local, reread


def check_local_rows_answer_as_the_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared with the PostgreSQL suite: the local rows' answers (labels, names, exact
    distances) are the store's, before and right after a deletion."""
    name = store.build()
    assert name is not None
    view = ann.load(store.settings.index_dir / name)
    assert view.local is not None
    probes = _probes(store, 40)
    snapshot = store.snapshot(name)
    local, reread = _search_ways(store, snapshot, probes, 5, monkeypatch)
    assert local == reread and _top1(local, store.exact(probes, 5)) >= 0.9
    assert all(h.name == h.label.upper() for hits in local for h in hits)

    gone = {hits[0].label for hits in local[:10]}
    store.delete(gone)  # seen by the next search: the log is asked per search
    local, reread = _search_ways(store, snapshot, probes, 5, monkeypatch)
    assert local == reread and not gone & {h.label for hits in local for h in hits}
    assert _top1(local, store.exact(probes, 5, without=frozenset(gone))) >= 0.9


def test_a_search_answers_from_the_local_rows_as_the_store_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_local_rows_answer_as_the_store(Store(tmp_path, 3000, limit=500), monkeypatch)


def test_a_zeroed_local_row_is_never_ranked(tmp_path: Path) -> None:
    """A row an update sharing the index's files removed reads as zeros: not an answer at
    distance |query|, whatever the deletion log says."""
    store = Store(tmp_path, 3000, limit=500)
    name = store.build()
    assert name is not None
    probes = _probes(store, 5)
    found = store.gallery.search(store.snapshot(name), DIM, probes, 3)
    folder = tmp_path / "index" / name
    view = ann.load(folder)
    top = found[0][0].label
    rows = [row for row, key in enumerate(view.keys) if store.labels[int(key) - 1] == top]
    with (folder / ann.EXACT_FILE).open("r+b") as exact:
        for row in rows:
            exact.seek(row * DIM * 4)
            exact.write(bytes(DIM * 4))
    again = InProcessGallery(store.database, store.settings).search(
        store.snapshot(name), DIM, probes, 3
    )
    assert top not in {h.label for h in again[0]}
    assert again[1:] == found[1:]


def test_a_search_re_reads_its_candidates_where_the_deletion_log_cannot_say(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, 3000, limit=500)
    name = store.build()
    snapshot = store.snapshot(name)
    probes = _probes(store, 30)
    before = store.gallery.search(snapshot, DIM, probes, 3)
    gone = {hits[0].label for hits in before[:10]}
    store.delete(gone)
    # A later training pruned the log past this snapshot's revision (a search that read the
    # snapshot just before): its removals are gone from the log, the rows from the store.
    with store.database.transaction() as session:
        prune_removals(session, "c", store.bounds().revision)
    after = store.gallery.search(snapshot, DIM, probes, 3)
    assert not gone & {h.label for hits in after for h in hits}
    assert _top1(after, store.exact(probes, 3, without=frozenset(gone))) >= 0.9
    # The collection deleted meanwhile: nothing of it is answered.
    with store.database.transaction() as session:
        for table in (SnapshotRemoval, CollectionMember):
            session.execute(delete(table).where(table.collection_id == "c"))
        session.execute(delete(Collection).where(Collection.id == "c"))
    assert store.gallery.search(snapshot, DIM, probes[:2], 3) == [[], []]


def test_an_index_without_local_rows_re_reads_and_the_next_training_builds_anew(
    tmp_path: Path,
) -> None:
    """An index folder of the previous release (no local rows) still answers, by re-reading,
    and is not updated but built anew, with them."""
    store = Store(tmp_path, 3000, limit=500)
    first = store.build()
    assert first is not None
    for file in (ann.EXACT_FILE, ann.TEXTS_FILE, ann.TEXT_OFFSETS_FILE):
        (tmp_path / "index" / first / file).unlink()
    upgraded = InProcessGallery(store.database, store.settings)  # a restarted process
    probes = _probes(store, 30)
    found = upgraded.search(store.snapshot(first), DIM, probes, 3)
    assert _top1(found, store.exact(probes, 3)) >= 0.9
    assert all(h.name == h.label.upper() for hits in found for h in hits)
    store.delete({"p00001"})
    second = upgraded.build(store.bounds(), DIM, first).name
    assert second is not None and second != first
    rebuilt = ann.load(tmp_path / "index" / second)
    # Built from the store (no blank row for the deleted one, as an update would leave).
    assert rebuilt.local is not None and rebuilt.live == len(rebuilt.keys)


def index_folders(folder: Path) -> list[str]:
    """The index folders of a collection's folder, by name (not its dot-named lock file)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def blanked(index: ann.AnnIndex, gone: set[str], store: Store) -> set[int]:
    """The embedding ids of the deleted labels' rows (the store numbers rows from 1)."""
    return {int(k) for k in index.keys if store.labels[int(k) - 1] in gone}


def test_an_update_reads_what_changed_and_rebuilds_past_the_share(tmp_path: Path) -> None:
    store = Store(tmp_path, 3000, limit=500)
    first = store.build()
    assert first is not None
    held = ann.load(tmp_path / "index" / first)
    rng = np.random.default_rng(5)
    # Each way rows join a snapshot: a new member, new images of a member, an enrollment made
    # before and added to the collection later; and one way to leave it.
    store.enroll("new", _unit(rng.normal(size=(2, DIM)).astype(np.float32)))
    with store.database.transaction() as session:
        session.execute(insert(Embedding), [_row("p00002", 9, store.vectors[-1] * -1)])
    store.labels.append("p00002")
    store.vectors = np.concatenate([store.vectors, -store.vectors[-1:]])
    store.enroll("outside", _unit(rng.normal(size=(1, DIM)).astype(np.float32)), member=False)
    second = store.build(previous=first)
    assert second is not None
    grown = ann.load(tmp_path / "index" / second)
    assert len(grown.keys) == len(held.keys) + 3 and grown.live == held.live + 3
    store.add_member("outside")
    store.delete({"p00001"})  # two rows
    third = store.build(previous=second)
    assert third is not None
    updated = ann.load(tmp_path / "index" / third)
    assert len(updated.keys) == len(held.keys) + 4 and updated.live == held.live + 2
    assert updated.meta["revision"] == store.bounds().revision
    probes = np.concatenate([_probes(store, 30), store.vectors[-4:]])
    found = store.gallery.search(store.snapshot(third), DIM, probes, 3)
    assert _top1(found, store.exact(probes, 3, without=frozenset({"p00001"}))) >= 0.9
    assert [hits[0].label for hits in found[-4:]] == ["new", "new", "p00002", "outside"]
    store.delete({f"p{i:05d}" for i in range(2, 1200)})
    rebuilt_name = store.build(previous=third)
    rebuilt = ann.load(tmp_path / "index" / str(rebuilt_name))
    assert (rebuilt.keys != ann.REMOVED).all() and len(rebuilt.keys) < len(held.keys)


def test_an_index_of_the_previous_release_answers_and_is_rebuilt(tmp_path: Path) -> None:
    store = Store(tmp_path, 1000, limit=500)
    first = store.build()
    assert first is not None
    for name in (ann.META_FILE, ann.LABELS_FILE):  # made before indexes had them
        (tmp_path / "index" / first / name).unlink()
    probes = _probes(store, 10)
    found = store.gallery.search(store.snapshot(first), DIM, probes, 3)
    assert _top1(found, store.exact(probes, 3)) >= 0.9
    second = store.build(previous=first)
    assert second is not None and second != first
    assert ann.load(tmp_path / "index" / second).live == len(store.vectors)


def test_an_index_of_several_lists_is_searched_through_all_and_rebuilt(tmp_path: Path) -> None:
    """An older release partitioned its index into lists and visited half of them; this one
    has one list (ann.LISTS): such an index is searched through every list until the next
    training builds it anew instead of updating it."""
    store = Store(tmp_path, 3000, limit=500)
    first = store.build()
    assert first is not None
    folder = tmp_path / "index" / first
    held = ann.load(folder)
    assert held.lists == ann.LISTS == 1
    older = faiss.index_factory(DIM, f"IVF16,PQ{DIM // 2}x4fs")
    faiss.extract_index_ivf(older).by_residual = False
    older.train(store.vectors)
    rows = np.flatnonzero(held.keys != ann.REMOVED)
    older.add_with_ids(store.vectors[held.keys[rows] - 1], rows)  # the store numbers rows from 1
    faiss.write_index(older, str(folder / ann.INDEX_FILE))
    reopened = ann.load(folder)
    assert reopened.lists == 16
    # Each stored vector finds itself: in whichever list it is, every list was visited.
    assert all(reopened.candidates(store.vectors[k - 1], 1)[0] == k for k in held.keys[::50])
    store.enroll("new", _unit(np.random.default_rng(5).normal(size=(1, DIM)).astype(np.float32)))
    second = store.build(previous=first)
    assert second is not None
    assert ann.load(tmp_path / "index" / second).lists == ann.LISTS


def test_rows_added_after_removals_are_found(tmp_path: Path) -> None:
    """faiss 1.15's removal from a fast-scan list left the moved codes' bytes in its last block,
    and codes added next were packed into them by OR: those rows were never found again
    (ann._remove mends it). Updates that remove and add, several times over."""
    rng = np.random.default_rng(12)
    # Past the 8,192 codes of 32 blocks: faiss's Python packer takes offsets below that only.
    vectors = _unit(rng.normal(size=(10_000, DIM)).astype(np.float32))
    ids = np.arange(10_000, dtype=np.int64)
    first = ids[:9_900]
    ann.build(tmp_path / "0", DIM, [(first, first, vectors[first])], 9_900, {}, vectors)
    live = set(range(9_900))
    steps = [([3, 4, 5, 9_899], 9_900), ([9_900, 7, 8], 9_930), ([12], 9_960)]
    for step, (gone, start) in enumerate(steps):
        added = ids[start : start + 30]
        ann.update(
            ann.load(tmp_path / str(step)),
            tmp_path / str(step + 1),
            np.asarray(gone, np.int64),
            [(added, added, vectors[added])],
            len(added),
            {},
        )
        live = (live - set(gone)) | set(added.tolist())
        index = ann.load(tmp_path / str(step + 1))
        assert index.live == len(live)
        found = {int(index.candidates(vectors[k], 1)[0]) for k in live}
        assert found == live


def test_a_row_deleted_while_the_index_is_built_leaves_a_blank_row(tmp_path: Path) -> None:
    store = Store(tmp_path, 1000, limit=500)
    ids = np.arange(1, len(store.vectors) + 1, dtype=np.int64)
    store.delete({"p00003"})
    folder = tmp_path / "index" / "c" / "x"
    training = store.vectors[ann.training_rows(len(ids))]
    counts = ann.build(folder, DIM, store.gallery._rows(ids, DIM), len(ids), {}, training)
    index = ann.load(folder)
    rows = store.labels.count("p00003")  # two: the first tenth have two vectors
    assert counts == (len(ids) - rows, len(set(store.labels)) - 1) and index.live == len(ids) - rows
    assert (index.keys == ann.REMOVED).sum() == rows and index.keys[-1] == ann.REMOVED
    # The texts of the rows that came line up with them, past the blank one.
    assert index.local is not None
    texts = index.local.texts(np.arange(len(ids)))
    kept = [label for label in store.labels if label != "p00003"]
    assert [gallery.read_row_text(t) for t in texts[: len(kept)]] == [
        (label, label.upper()) for label in kept
    ]
    assert texts[len(kept) :] == [b""] * rows


def test_an_index_files_its_rows_by_chunk_and_an_update_copies_blanks_and_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vectors file is written and read by offset a chunk at a time (index/ann.py
    _RowFile): every row lands where the keys say, across chunk edges, in a build fed fewer
    rows than announced and in an update that removes runs of rows and appends."""
    monkeypatch.setattr(ann, "ADD_CHUNK", 64)
    rng = np.random.default_rng(11)
    vectors = _unit(rng.normal(size=(1200, DIM)).astype(np.float32))
    ids = np.arange(100, 1300, dtype=np.int64)
    monkeypatch.setattr(ann, "TEXT_CHUNK", 1000)
    rng = np.random.default_rng(11)
    vectors = _unit(rng.normal(size=(1200, DIM)).astype(np.float32))
    ids = np.arange(100, 1300, dtype=np.int64)
    texts = [f"row {i}".encode() * (1 + i % 3) for i in range(1300)]  # of varied lengths
    fed = [
        (ids[i : i + 100], ids[i : i + 100], vectors[i : i + 100], texts[i : i + 100])
        for i in range(0, 1100, 100)
    ]
    first = tmp_path / "first"
    training = vectors[ann.training_rows(1200)]
    assert ann.build(first, DIM, fed, 1200, {}, training) == (1100, 1100)  # 100 never came
    built = ann.load(first)
    assert (built.vectors[:1100] == vectors[:1100].astype(np.float16)).all()
    assert not built.vectors[1100:].any() and (built.keys[1100:] == ann.REMOVED).all()
    assert (built.keys[:1100] == ids[:1100]).all() and (built.labels[:1100] == ids[:1100]).all()
    assert built.local is not None
    every = np.arange(1200)
    assert (built.local.vectors(every[:1100]) == vectors[:1100]).all()  # exact: float32
    assert not built.local.vectors(every[1100:]).any()
    assert built.local.texts(every) == texts[:1100] + [b""] * 100

    removed = np.concatenate([ids[60:200], ids[[5, 7, 640]]])  # a run across two chunk edges
    added = (ids[1100:] + 10_000, ids[1100:], vectors[1100:], texts[1100:1200])
    ann.update(ann.load(first), tmp_path / "second", removed, [added], 100, {})
    updated = ann.load(tmp_path / "second")
    gone = np.isin(updated.keys[:1200], ann.REMOVED)
    expected = np.concatenate([vectors[:1100], np.zeros((100, DIM)), vectors[1100:]])
    expected[:1100][np.isin(ids[:1100], removed)] = 0
    assert (updated.vectors == expected.astype(np.float16)).all()
    assert gone.sum() == 100 + len(removed) and updated.live == 1100 - len(removed) + 100
    assert (updated.keys[1200:] == ids[1100:] + 10_000).all()
    assert (built.vectors[:1100] == vectors[:1100].astype(np.float16)).all()  # left as it was
    # The local rows likewise: a removed row's vector and text zeroed (gone from the files).
    assert updated.local is not None
    assert (updated.local.vectors(np.arange(1300)) == expected.astype(np.float32)).all()
    expected_texts = texts[:1100] + [b""] * 100 + texts[1100:1200]
    for row in np.flatnonzero(np.isin(ids[:1100], removed)):
        expected_texts[row] = bytes(len(texts[row]))
    assert updated.local.texts(np.arange(1300)) == expected_texts
    # Shared with the first index, not copied: its own rows read as the update left them (the
    # removed ones zeroed, which no search of it answers), its other files as they were.
    for name in (ann.EXACT_FILE, ann.TEXTS_FILE):
        assert (first / name).stat().st_ino == (tmp_path / "second" / name).stat().st_ino
    assert built.local.texts(every) == expected_texts[:1200]
    assert (built.local.vectors(every) == expected[:1200].astype(np.float32)).all()

    # A second update of the first index (a branch) finds the files longer than its rows:
    # it copies them, and neither index's rows change the other's.
    again = (ids[1100:] + 20_000, ids[1100:], vectors[:100], texts[:100])
    ann.update(ann.load(first), tmp_path / "third", ids[[9]], [again], 100, {})
    third = ann.load(tmp_path / "third")
    assert third.local is not None
    assert (tmp_path / "third" / ann.EXACT_FILE).stat().st_ino != (
        first / ann.EXACT_FILE
    ).stat().st_ino
    assert third.local.texts(np.arange(1200, 1300)) == texts[:100]
    assert (third.local.vectors(np.arange(1200, 1300)) == vectors[:100]).all()
    assert updated.local.texts(np.arange(1300)) == expected_texts  # the second unchanged
    # The copy holds the first's rows as they are: zeroed where the second update removed
    # them (deletions, which every later update removes too; a search skips a zeroed row).
    assert third.local.texts(np.arange(1200)) == [
        bytes(len(t)) if row == 9 else t for row, t in enumerate(expected_texts[:1200])
    ]


def test_an_update_copies_the_local_rows_where_hard_links_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = _unit(np.random.default_rng(6).normal(size=(300, DIM)).astype(np.float32))
    ids = np.arange(300, dtype=np.int64)
    texts = [f"t{i}".encode() for i in range(300)]
    ann.build(tmp_path / "a", DIM, [(ids, ids, vectors, texts)], 300, {}, vectors)

    def refuse(*_: object) -> None:
        raise OSError(1, "no hard links on this file system")

    monkeypatch.setattr(os, "link", refuse)
    added = (ids[:5] + 300, ids[:5], vectors[:5], texts[:5])
    ann.update(ann.load(tmp_path / "a"), tmp_path / "b", ids[:3], [added], 5, {})
    first, second = ann.load(tmp_path / "a"), ann.load(tmp_path / "b")
    assert first.local is not None and second.local is not None
    assert second.local.texts(np.arange(305)) == [
        *(bytes(len(t)) for t in texts[:3]),
        *texts[3:],
        *texts[:5],
    ]
    assert first.local.texts(np.arange(300)) == texts  # its own files, untouched


def test_an_index_fed_without_texts_has_no_local_rows_and_refuses_mixed_batches(
    tmp_path: Path,
) -> None:
    vectors = _unit(np.random.default_rng(5).normal(size=(300, DIM)).astype(np.float32))
    ids = np.arange(300, dtype=np.int64)
    ann.build(tmp_path / "plain", DIM, [(ids, ids, vectors)], 300, {}, vectors)
    plain = ann.load(tmp_path / "plain")
    assert plain.local is None and not (tmp_path / "plain" / ann.EXACT_FILE).exists()
    # Updated, it stays without (texts given for the added rows are not kept).
    added = (ids[:10] + 300, ids[:10], vectors[:10], [b"x"] * 10)
    ann.update(plain, tmp_path / "plain2", ids[:5], [added], 10, {})
    assert ann.load(tmp_path / "plain2").local is None
    with_texts = (ids[:150], ids[:150], vectors[:150], [b"t"] * 150)
    without = (ids[150:], ids[150:], vectors[150:])
    with pytest.raises(ValueError, match="every batch"):
        ann.build(tmp_path / "mixed", DIM, [with_texts, without], 300, {}, vectors)
    ann.build(tmp_path / "local", DIM, [(ids, ids, vectors, [b"t"] * 300)], 300, {}, vectors)
    with pytest.raises(ValueError, match="need texts"):
        ann.update(ann.load(tmp_path / "local"), tmp_path / "local2", ids[:0], [without], 150, {})
    assert not (tmp_path / "mixed").exists() and not (tmp_path / "local2").exists()


def test_a_build_that_fails_while_its_rows_are_added_leaves_nothing(tmp_path: Path) -> None:
    """The rows are written and added in a thread of their own (ann._Behind) while the next
    batch is read: a failure there reaches the build, and one of the batches' stops the thread
    first; either way no folder is left, half-written or not."""
    vectors = _unit(np.random.default_rng(8).normal(size=(400, DIM)).astype(np.float32))
    ids = np.arange(400, dtype=np.int64)
    wrong = _unit(np.random.default_rng(9).normal(size=(100, DIM * 2)).astype(np.float32))
    batches = [(ids[:200], ids[:200], vectors[:200]), (ids[200:300], ids[200:300], wrong)]
    with pytest.raises(AssertionError):  # faiss refuses vectors of another dimension
        ann.build(tmp_path / "added", DIM, batches, 400, {}, vectors)

    def failing() -> ann.Batches:
        yield ids[:200], ids[:200], vectors[:200]
        raise OSError("the store went away")

    with pytest.raises(OSError, match="went away"):
        ann.build(tmp_path / "read", DIM, failing(), 400, {}, vectors)
    assert list(tmp_path.iterdir()) == []
    assert ann.build(tmp_path / "ok", DIM, [(ids, ids, vectors)], 400, {}, vectors) == (400, 400)
    assert (ann.load(tmp_path / "ok").candidates(vectors[7], 1) == [7]).all()


def test_label_numbers_tell_enrollment_ids_apart() -> None:
    ids = [f"s{i:09d}" for i in range(100_000)] + ["é" * 64, "a" * 70, "a" * 71]
    numbers = label_numbers(ids)
    assert len(np.unique(numbers)) == len(ids)
    # The same in every call (beside longer ids or not) and process.
    assert (label_numbers(ids[:5]) == numbers[:5]).all()
    # Written to index files: a change would make every index count people wrongly.
    assert label_numbers(["s000000000"])[0] == 0xB8DDE5E104D16F96 - 2**64


def test_an_index_of_another_recipe_is_not_used(tmp_path: Path) -> None:
    store = Store(tmp_path, 600, limit=500)
    name = store.build()
    other = TrainedSnapshot(SnapshotBounds("c", 1, 10**9, "other@1/none"), 1, name)
    with pytest.raises(RecipeMismatch, match=RECIPE):
        store.gallery.search(other, DIM, _probes(store, 1), 1)


def test_the_index_library_and_onnxruntime_load_in_either_order() -> None:
    """Both bring native thread pools (faiss OpenMP); an earlier index library (usearch 2.26)
    crashed the interpreter when imported before onnxruntime."""
    build = (
        "import numpy as np, faiss; x = np.random.rand(2000, 16).astype('float32'); "
        "i = faiss.index_factory(16, 'IVF16,PQ8x4fs'); i.train(x); i.add(x); "
        "assert i.search(x[:1], 1)[1][0][0] == 0"
    )
    for first, second in (("faiss", "onnxruntime"), ("onnxruntime", "faiss")):
        done = subprocess.run(
            [sys.executable, "-c", f"import {first}; import {second}; {build}"],
            capture_output=True,
        )
        assert done.returncode == 0, done.stderr.decode()


@pytest.fixture
def small_limit_services(settings: Settings, engine: FakeEngine) -> Services:
    app = create_app(settings.model_copy(update={"exact_search_limit": 4}), engine)
    services: Services = app.state.services
    return services


# 16 faces of distinct colours: 16 people, above small_limit_services's exact limit.
GRID = [(r, g, 0) for r in (40, 104, 168, 232) for g in (40, 104, 168, 232)]


def _enroll_grid(
    services: Services, tenant: Tenant, collection: str, faces: Faces
) -> dict[tuple[int, int, int], str]:
    """Each face of GRID enrolled in ``collection``: its enrollment id by colour."""
    return {
        colour: services.enrollments.create(
            tenant, {"img0": faces.png(colour)}, collection_id=collection
        )
        for colour in GRID
    }


def test_training_builds_updates_and_retires_the_index_through_the_service(
    small_limit_services: Services, faces: Faces
) -> None:
    services = small_limit_services
    tenant: Tenant = services.keys.authenticate(services.keys.create("t").secret)
    collection = services.collections.create(tenant, "c")
    people = GRID
    ids = _enroll_grid(services, tenant, collection, faces)
    assert services.trainer.train(collection)
    with services.database.reading() as session:
        first = session.get_one(Collection, collection).index_name
    assert first is not None
    for colour in people[:4]:
        found = services.recognition.identify(tenant, collection, faces.png(colour))[0]
        assert found.identified is not None and found.identified.enrollment_id == ids[colour]
    services.enrollments.delete(tenant, ids[people[0]])
    found = services.recognition.identify(tenant, collection, faces.png(people[0]), top_k=16)[0]
    assert ids[people[0]] not in {c.enrollment_id for c in found.candidates}
    assert services.trainer.train(collection)
    with services.database.reading() as session:
        second = session.get_one(Collection, collection).index_name
    assert second is not None and second != first
    folder = services.settings.data_dir / "index" / collection
    assert index_folders(folder) == sorted({Path(first).name, Path(second).name})
    # The replaced index, which still holds the deleted face, goes after its grace period.
    assert services.trainer.discard_replaced() == 0
    later = time.monotonic() + PREVIOUS_INDEX_GRACE_S + 1
    assert services.trainer.discard_replaced(now=later) == 1
    assert index_folders(folder) == [Path(second).name]
    held = ann.load(folder / Path(second).name)
    assert (held.keys == ann.REMOVED).sum() == 1 and not held.vectors[
        held.keys == ann.REMOVED
    ].any()
    # The deletion stays logged until no index that a training may update holds it.
    assert _logged(services, collection) == 1
    assert services.trainer.train(collection)
    assert _logged(services, collection) == 0
    services.enrollments.delete(tenant, ids[people[1]])
    assert _logged(services, collection) == 1
    services.collections.delete(tenant, collection)
    assert not folder.exists() and _logged(services, collection) == 0


def _logged(services: Services, collection_id: str) -> int:
    with services.database.reading() as session:
        return len(
            session.scalars(
                select(SnapshotRemoval).where(SnapshotRemoval.collection_id == collection_id)
            ).all()
        )


def test_a_deletion_is_logged_for_every_collection_holding_the_person(
    small_limit_services: Services, faces: Faces
) -> None:
    services = small_limit_services
    tenant: Tenant = services.keys.authenticate(services.keys.create("t").secret)
    first, second = (services.collections.create(tenant, name) for name in ("a", "b"))
    person = services.enrollments.create(
        tenant,
        {"img0": faces.png((40, 40, 0)), "img1": faces.png((40, 104, 0))},
        collection_id=first,
    )
    services.collections.add_enrollment(tenant, second, person)
    services.enrollments.delete(tenant, person)
    with services.database.reading() as session:
        logged = session.execute(
            select(SnapshotRemoval.collection_id, func.count()).group_by(
                SnapshotRemoval.collection_id
            )
        ).all()
        revisions = {c.id: c.revision for c in session.scalars(select(Collection)).all()}
        removal_revisions = {
            r.collection_id: r.removed_revision
            for r in session.scalars(select(SnapshotRemoval)).all()
        }
    assert sorted(logged) == sorted([(first, 2), (second, 2)])  # two images in each
    assert removal_revisions == revisions  # at the revision the deletion made


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (SqliteReads.new_embeddings, ["e USING INDEX ix_embeddings_recipe", "m USING INDEX"]),
        (
            SqliteReads.new_members,
            [
                "m USING INDEX ix_collection_members_collection_revision",
                "e USING INDEX ix_embeddings_enrollment_position (enrollment_id=?)",
            ],
        ),
        (
            text(reads.CANDIDATE_ROWS.format(ids="?, ?")),
            ["e USING INTEGER PRIMARY KEY", "m USING COVERING INDEX"],
        ),
        (
            text(reads.NAMES.format(ids="?, ?")),
            ["enrollments USING INDEX sqlite_autoindex_enrollments_1"],
        ),
        (
            text(reads.ROW_RANGE),
            [
                "e USING INTEGER PRIMARY KEY (rowid>? AND",
                "n USING INDEX sqlite_autoindex_enrollments_1 (id=?)",
            ],
        ),
        (
            text(reads.ROWS.format(ids="?, ?")),
            [
                "e USING INTEGER PRIMARY KEY (rowid=?)",
                "n USING INDEX sqlite_autoindex_enrollments_1 (id=?)",
            ],
        ),
        (
            text(
                str(
                    gallery.still_members("c", ["a", "b"]).compile(
                        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
                    )
                )
            ),
            ["USING COVERING INDEX sqlite_autoindex_collection_members_1"],
        ),
        (
            text(reads.REMOVALS),
            [
                "snapshot_removals USING INDEX ix_snapshot_removals_collection_revision"
                " (collection_id=? AND removed_revision>?)"
            ],
        ),
        (text(reads.LOGGED_AFTER), ["collections USING INDEX sqlite_autoindex_collections_1"]),
    ],
    ids=[
        "new embeddings",
        "new members",
        "candidates",
        "names",
        "row range",
        "rows",
        "still members",
        "removals",
        "logged after",
    ],
)
def test_hand_written_statements_search_by_their_indexes(
    tmp_path: Path, statement: TextClause, expected: list[str]
) -> None:
    """Each is a handful of lookups at any size; a plan that scans (the recipe's index for each
    new member, seen at 10^6: ten minutes instead of 60 ms) is caught here."""
    database = Database.from_settings(Settings(data_dir=tmp_path))
    sql = re.sub(r"\(?\s*:ids\s*\)?", "(1, 2)", statement.text)
    sql = re.sub(r":\w+", "?", sql)
    with database.engine.connect() as connection:
        plan = [
            row[-1]
            for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}", tuple([1] * sql.count("?"))
            )
        ]
    assert len(plan) == len(expected)
    for step, wanted in zip(plan, expected, strict=True):
        assert step.startswith("SEARCH") and wanted in step, plan


def test_a_search_past_sqlites_parameter_limit_reads_its_candidates_in_chunks(
    tmp_path: Path,
) -> None:
    """Most candidates deleted since training (more than a search applies to the index's
    local rows itself): the search re-reads its candidates from the store and widens until it
    has enough people, past the 32,766 ids one statement may bind."""
    store = Store(tmp_path, 40_000, limit=500)
    name = store.build()
    keep = ["p00007", "p39999"]
    with store.database.transaction() as session:  # as log_removal does, for 40,000 at once
        revision = session.get_one(Collection, "c").revision + 1
        session.get_one(Collection, "c").revision = revision
        session.execute(
            insert(SnapshotRemoval).from_select(
                ["collection_id", "embedding_id", "removed_revision"],
                select(literal("c"), Embedding.id, literal(revision)).where(
                    Embedding.enrollment_id.not_in(keep)
                ),
            )
        )
        for table in (Embedding, CollectionMember):
            session.execute(delete(table).where(table.enrollment_id.not_in(keep)))
    probe = store.vectors[store.labels.index("p00007")][np.newaxis, :]
    found = store.gallery.search(store.snapshot(name), DIM, probe, 2)[0]
    assert [h.label for h in found] == ["p00007", "p39999"]


def test_start_up_removes_the_index_folders_of_deleted_collections(tmp_path: Path) -> None:
    """Deleted while the process was down, or by another machine (PostgreSQL): the folders of
    collections that exist stay, and so do dot-named ones (a build in progress)."""
    store = Store(tmp_path, 1000, limit=500)
    name = store.build()
    assert name is not None
    root = tmp_path / "index"
    (root / "gone" / "x").mkdir(parents=True)
    (root / ".build.lock").touch()
    store.gallery.open(RECIPE, DIM)
    assert sorted(p.name for p in root.iterdir()) == [".build.lock", "c"]
    assert (root / name / ann.INDEX_FILE).is_file()


def test_start_up_removes_builds_abandoned_half_written(tmp_path: Path) -> None:
    """A staging folder nothing wrote to for an hour was left by a build cut short; a recent
    one may be another process's build in progress."""
    store = Store(tmp_path, 1000, limit=500)
    collection = tmp_path / "index" / "c"
    abandoned, building = collection / ".x.1.partial", collection / ".y.2.partial"
    for folder in (abandoned, building):
        folder.mkdir(parents=True)
        (folder / ann.VECTORS_FILE).write_bytes(b"rows")
    hour_ago = time.time() - ann.ABANDONED_AFTER_S - 60
    for path in (abandoned / ann.VECTORS_FILE, abandoned):
        os.utime(path, (hour_ago, hour_ago))
    store.gallery.open(RECIPE, DIM)
    assert not abandoned.exists() and building.is_dir()


def _index_folder(folder: Path, rows: int) -> Path:
    vectors = _unit(np.random.default_rng(rows).standard_normal((rows, DIM), dtype=np.float32))
    ids = np.arange(rows, dtype=np.int64)
    ann.build(folder, DIM, [(ids, ids, vectors)], rows, {}, vectors)
    return folder


def test_a_preloaded_index_waits_beside_the_one_searches_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training opens the folder it wrote before it records the snapshot (index/ann.py
    ViewCache): searches of the recorded snapshot keep their view, and the first search of the
    new one opens nothing."""
    old, new = (_index_folder(tmp_path / "c" / name, 600) for name in ("old", "new"))
    views = ann.ViewCache(capacity=4)
    current = views.get(old)
    views.preload(new)
    opened: list[Path] = []
    monkeypatch.setattr(ann, "load", lambda folder: opened.append(folder))
    assert views.get(old) is current
    assert views.get(new).live == 600
    assert opened == []
    views.forget({new})
    views.get(new)
    assert opened == [new]


def test_searches_asking_at_once_open_a_folder_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening reads the faiss codes (15-460 ms at 10^6): the searches that arrive meanwhile
    wait for that one opening instead of each making their own."""
    folder = _index_folder(tmp_path / "c" / "x", 600)
    real_load = ann.load
    opened: list[Path] = []

    def slow_load(path: Path) -> ann.AnnIndex:
        opened.append(path)
        time.sleep(0.2)
        return real_load(path)

    monkeypatch.setattr(ann, "load", slow_load)
    views = ann.ViewCache(capacity=4)
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(views.get, [folder] * 4))
    assert opened == [folder]
    assert all(view is found[0] for view in found)


def test_an_index_prepared_ahead_is_where_the_next_training_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """service/ahead.py: between trainings the gallery makes a folder that nothing records,
    again only when something changed; the first training then updates it, never building."""
    store = Store(tmp_path, 3000, limit=500)
    collection = tmp_path / "index" / "c"
    assert store.gallery.prepare(store.bounds(), DIM) is None  # no earlier one to supersede
    first = index_folders(collection)
    assert len(first) == 1
    assert store.gallery.prepare(store.bounds(), DIM) is None
    assert index_folders(collection) == first  # nothing changed: nothing written
    store.enroll("new", _unit(np.random.default_rng(8).normal(size=(1, DIM)).astype(np.float32)))
    assert store.gallery.prepare(store.bounds(), DIM) == f"c/{first[0]}"
    second = next(n for n in index_folders(collection) if n != first[0])
    assert ann.load(collection / second).live == ann.load(collection / first[0]).live + 1

    store.delete({"p00003"})

    def no_build(*_: object) -> ann.Counts:
        raise AssertionError("the training built anew instead of updating the prepared index")

    monkeypatch.setattr(ann, "build", no_build)
    trained = store.build()  # the first training: nothing recorded to start from
    assert trained is not None and Path(trained).name not in (first[0], second)
    probes = np.concatenate([_probes(store, 20), store.vectors[-1:]])
    found = store.gallery.search(store.snapshot(trained), DIM, probes, 3)
    assert found[-1][0].label == "new"
    assert "p00003" not in {h.label for hits in found for h in hits}
    assert _top1(found, store.exact(probes, 3, without=frozenset({"p00003"}))) >= 0.9


def test_an_index_holding_the_snapshot_already_is_recorded_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first training after the index was prepared ahead, and a retrain with nothing new,
    record the folder they start from, neither copying nor building it; one made at an earlier
    revision is copied with the new one (the removals log is pruned by revision)."""
    store = Store(tmp_path, 3000, limit=500)
    store.gallery.prepare(store.bounds(), DIM)
    (prepared,) = index_folders(tmp_path / "index" / "c")

    def no_write(*_: object) -> ann.Counts:
        raise AssertionError("an index holding the snapshot was written again")

    monkeypatch.setattr(ann, "build", no_write)
    monkeypatch.setattr(ann, "update", no_write)
    first = store.build()  # Store.build checks the counts against the store's
    assert first == f"c/{prepared}"
    assert store.build(previous=first) == first
    monkeypatch.undo()
    # PostgreSQL's catch-up: the snapshot, trained on another machine, names the folder.
    named = f"c/{gallery.recipe_tag(RECIPE)}-elsewhere"
    assert store.gallery._build(store.bounds(), DIM, first, named).name == named
    assert ann.load(tmp_path / "index" / named).live == ann.load(tmp_path / "index" / first).live
    with store.database.transaction() as session:
        session.get_one(Collection, "c").revision += 1  # as if a member came and went
    moved = store.build(previous=first)
    assert moved is not None and moved != first
    assert ann.load(tmp_path / "index" / moved).meta["revision"] == store.bounds().revision


def test_a_below_the_limit_collection_is_not_prepared(tmp_path: Path) -> None:
    store = Store(tmp_path, 300, limit=500)
    assert store.gallery.prepare(store.bounds(), DIM) is None
    assert index_folders(tmp_path / "index" / "c") == []


def test_the_trainer_prepares_ahead_once_changes_pause_and_training_retires_it(
    small_limit_services: Services, faces: Faces
) -> None:
    services = small_limit_services
    tenant: Tenant = services.keys.authenticate(services.keys.create("t").secret)
    collection = services.collections.create(tenant, "c")
    _enroll_grid(services, tenant, collection, faces)
    folder = services.settings.data_dir / "index" / collection
    assert services.trainer.poll_ahead() == 0  # first seen: it may still be changing
    assert services.trainer.poll_ahead() == 1  # unchanged since: due
    assert services.trainer.poll_ahead() == 0  # handed out once per revision
    services.trainer.shutdown()  # waits for the queued preparation
    prepared = index_folders(folder)
    assert len(prepared) == 1
    with services.database.reading() as session:
        row = session.get_one(Collection, collection)
        assert row.index_name is None and row.trained_revision is None  # nothing recorded
    assert services.trainer.train(collection)
    with services.database.reading() as session:
        recorded = session.get_one(Collection, collection).index_name
    # Nothing changed since it was prepared: the training recorded that folder as it is.
    assert recorded is not None and index_folders(folder) == prepared == [Path(recorded).name]
    assert services.trainer.poll_ahead() == 0  # trained: nothing to prepare
