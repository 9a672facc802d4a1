"""An approximate nearest-neighbour index over a snapshot's embeddings: faiss IVF + fast-scan PQ,
with a memory-mapped float16 copy of the vectors to re-rank its candidates.

Why this shape (measured with tools/ann_choice.py on 1,000,000 vectors drawn like SFace
descriptors, probes by real LFW images, BENCHMARKS.md "Scale"): face descriptors spread almost
uniformly over the sphere and a probe lies far from every stored vector but its mate's, which
defeats graph indexes — usearch's HNSW (32 links, 256 candidates) found the true nearest for 76 %
of probes at 10^6 after an 18-minute build — and makes any coarse partition weak, so a search has
to look at a good part of the collection. Fast-scan PQ (4-bit codes, 2 dimensions per code,
SIMD lookup tables) makes that cheap: half of 10^6 codes scanned in ~3-4 ms on one core, and
the true nearest is among the first ``CANDIDATES`` for ~99.5 % of probes (``PROBE_SHARE``); a
10^6 build takes ~10-15 s instead of ~18 minutes.

One snapshot's index is a folder written once and never changed (a new training makes a new
folder), so a reader never sees it half-written and never needs to check it for staleness:

- ``ivf.faiss``: the faiss index; its ids are *row numbers* of the two arrays below. Read into
  each process (its codes are 32 bytes a vector for 128 dimensions: ~41 MB at 10^6).
- ``keys.npy``: the embedding id of each row (int64; -1 for a row removed by an update).
- ``labels.npy``: a label of each row (int64, the caller's: the gallery's says which person),
  so that an update can count the distinct labels it holds without reading them again.
- ``vectors.npy``: each row's vector in float16. The three arrays are memory-mapped read-only,
  so every process on a machine shares one copy in the page cache.
- ``meta.json``: what the caller recorded with it (the gallery: the snapshot it was made for,
  from which the next update reads only what changed since).

The index only proposes candidates: the gallery re-reads the best of them from the store (which
drops deleted rows and gives their exact float32 vectors) and ranks those exactly, so the
index's quantisation costs recall only, never a wrong distance.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AnnIndex",
    "Counts",
    "ViewCache",
    "abandoned_staging",
    "build",
    "fits",
    "load",
    "read_meta",
    "update",
]

INDEX_FILE = "ivf.faiss"
KEYS_FILE = "keys.npy"
LABELS_FILE = "labels.npy"
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.json"
# Written by every build and update; fsynced before the folder is renamed into place.
FILES = (KEYS_FILE, LABELS_FILE, VECTORS_FILE, META_FILE, INDEX_FILE)
REMOVED = -1  # the key of a row an update removed (its vector is zeroed: gone from the file)
# A folder being written is named ".NAME.PID.partial" beside where it goes; one left untouched
# this long was abandoned (see abandoned_staging).
PARTIAL_SUFFIX = ".partial"
ABANDONED_AFTER_S = 3600.0

# Lists of the coarse partition: about one per 500 vectors, at most 2,048. On this data a
# search must visit a good share of the lists whatever their number, and finer lists lose less
# of it: at 10^6 and 30 % of the lists, 1,024 lists found the true nearest for 96.5 % of 200
# real probes, 2,048 for 99 % (4,096: 98.5 %, and 26 s of k-means instead of 7).
VECTORS_PER_LIST = 500
MAX_LISTS = 2_048
MIN_LISTS = 16
# Share of the lists a search visits, and candidates taken from the codes before the float16
# re-rank. Nearly every miss is a true nearest in a list not visited, so the share sets the
# recall and the time (the codes scanned). Chosen on the 945 LFW DevTrain people with two
# images (the fit split) as probes at 10^6 (``tools/ann_choice.py DATA --shares
# 0.3,0.4,0.5,0.6 --dev-probes``): 30 % of the lists found the true nearest for 98.4 % of them
# (2.7 ms p50, one core), 40 % for 99.0 %, 50 % for 99.6 % (2.7 ms), 60 % for all (3.2 ms).
# On the 735 people outside DevTrain that the bench reports on (the same without
# ``--dev-probes``): 98.0, 98.9, 99.3, 99.6 %. 128 candidates instead of 256 lost one more
# probe, 1,024 found none more.
PROBE_SHARE = 0.5
# ... and at least MIN_SCANNED codes (about a millisecond): an index of up to that many is
# scanned whole, one a few times larger mostly (at 10^5, 30 % of 200 lists found the true
# nearest for 95 % of probes, the whole index for 100 %, in ~1 ms).
MIN_SCANNED = 100_000
CANDIDATES = 256
# Vectors per list for k-means and the PQ codebooks: faiss asks for 39 at least; more lengthen
# the first build for no recall measured.
TRAIN_PER_LIST = 40
# k-means iterations of the coarse partition (faiss's default: 25). At 10^6 on the DevTrain
# probes, 10 found the true nearest as often (99.7 % at 50 % of the lists; 25: 99.6 %) and the
# build took 9.3 s instead of 12.7 (k-means alone 2.9 s instead of 6.8, 2 cores): the
# partition only has to spread the rows.
KMEANS_ITERATIONS = 10
# faiss's OpenMP threads while building (0: every core); a search uses the caller's thread only.
BUILD_THREADS = 0
# Rows read, written or converted to float32 at a time while building or updating: bounds each
# copy (a chunk of float32 rows is 25 MB at 128 dimensions).
ADD_CHUNK = 50_000


class Counts(NamedTuple):
    """What a written index holds: rows a search can return, and their distinct labels."""

    live: int
    labels: int


Meta = Mapping[str, int | str]
# What builds and updates read: (embedding ids, labels, vectors) of some rows at a time.
Batches = Iterable[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]]


def fits(dimension: int) -> bool:
    """Fast-scan PQ pairs the dimensions (2 per 4-bit code)."""
    return dimension >= 2 and dimension % 2 == 0


def list_count(size: int) -> int:
    return int(min(MAX_LISTS, max(MIN_LISTS, size // VECTORS_PER_LIST)))


@dataclass(frozen=True)
class AnnIndex:
    """One snapshot's index, opened: the faiss index, the row arrays and the caller's meta."""

    index: faiss.Index
    keys: NDArray[np.int64]
    labels: NDArray[np.int64]
    vectors: NDArray[np.float16]
    folder: Path  # where it was read from: an update copies its vectors file from there
    meta: Meta = field(default_factory=dict)

    @property
    def live(self) -> int:
        """Rows not removed: what a search can return."""
        return int(self.index.ntotal)

    def held_keys(self) -> NDArray[np.int64]:
        return np.asarray(self.keys[self.keys != REMOVED], dtype=np.int64)

    def counts(self) -> Counts:
        return _counts(self.index, self.keys, self.labels)

    def candidates(self, query: NDArray[np.float32], count: int) -> NDArray[np.int64]:
        """The embedding ids of up to ``count`` nearest rows, nearest first: the codes propose
        ``max(count, CANDIDATES)`` rows, their float16 vectors rank them."""
        if self.live == 0:
            return np.zeros(0, np.int64)
        ivf = faiss.extract_index_ivf(self.index)
        params = faiss.SearchParametersIVF()
        share = max(PROBE_SHARE, MIN_SCANNED / self.live)
        params.nprobe = min(ivf.nlist, max(1, round(share * ivf.nlist)))
        faiss.omp_set_num_threads(1)  # per thread: a request never fans out over the cores
        wanted = min(self.live, max(count, CANDIDATES))
        _, found = self.index.search(query.reshape(1, -1), wanted, params=params)
        rows = found[0][found[0] >= 0]
        differences = self.vectors[rows].astype(np.float32) - query.reshape(1, -1)
        distances = np.einsum("ij,ij->i", differences, differences)
        best = rows[np.argsort(distances, kind="stable")[:count]]
        return np.asarray(self.keys[best], dtype=np.int64)


def build(folder: Path, dimension: int, batches: Batches, size: int, meta: Meta) -> Counts:
    """A new index of up to ``size`` rows from ``batches`` of (embedding ids, labels, vectors),
    written to ``folder`` atomically with ``meta``. The float16 rows are written as they come;
    k-means and the codebooks are trained on an evenly spread sample of them, then every row
    is added. Rows the batches fall short of (deleted while they were read) stay blank."""
    with (
        _Staging(folder) as staging,
        _RowFile.create(staging / VECTORS_FILE, size, dimension) as vectors,
    ):
        keys, labels = _blank_rows(size), _blank_rows(size)
        row = 0
        for ids, batch_labels, batch in batches:
            keys[row : row + len(ids)] = ids
            labels[row : row + len(ids)] = batch_labels
            vectors.write(row, batch)
            row += len(ids)
        if row == 0:
            raise RuntimeError("no rows to index")
        lists = list_count(row)
        index = faiss.index_factory(dimension, f"IVF{lists},PQ{dimension // 2}x4fs")
        # Codes of the vectors themselves, not of their offsets from the list's centroid: one
        # lookup table per search instead of one per visited list (2.5 ms instead of 4.3 at
        # 10^6, the same recall).
        ivf = faiss.extract_index_ivf(index)
        ivf.by_residual = False
        ivf.cp.niter = KMEANS_ITERATIONS
        faiss.omp_set_num_threads(BUILD_THREADS or os.cpu_count() or 1)
        sample = np.linspace(0, row - 1, min(row, TRAIN_PER_LIST * lists)).astype(np.int64)
        index.train(vectors.rows(sample))
        for start in range(0, row, ADD_CHUNK):
            stop = min(row, start + ADD_CHUNK)
            chunk = vectors.read(start, stop).astype(np.float32)
            index.add_with_ids(chunk, np.arange(start, stop, dtype=np.int64))
        return _write(staging, index, keys, labels, meta)


def update(
    previous: AnnIndex,
    folder: Path,
    removed: NDArray[np.int64],
    added: Batches,
    added_count: int,
    meta: Meta,
) -> Counts:
    """``previous`` less the rows of the ``removed`` embedding ids, plus ``added``, written to
    ``folder`` with ``meta``: the arrays are copied with the removed rows blanked (their
    vectors leave the file), new rows appended, and the faiss index edited instead of rebuilt.
    ``previous`` must be a private copy (:func:`load`, not a cached view that searches use):
    it is edited."""
    index = previous.index
    old_rows = len(previous.keys)
    size = old_rows + added_count
    dimension = previous.vectors.shape[1]
    with (
        _Staging(folder) as staging,
        _RowFile.create(staging / VECTORS_FILE, size, dimension) as vectors,
    ):
        vectors.copy(previous.folder / VECTORS_FILE, old_rows)
        keys, labels = _blank_rows(size), _blank_rows(size)
        keys[:old_rows] = previous.keys
        labels[:old_rows] = previous.labels
        gone = np.flatnonzero(np.isin(previous.keys, removed))
        if len(gone):
            index.remove_ids(faiss.IDSelectorBatch(gone.astype(np.int64)))
            keys[gone] = REMOVED
            labels[gone] = REMOVED
            vectors.blank(gone)
        row = old_rows
        faiss.omp_set_num_threads(BUILD_THREADS or os.cpu_count() or 1)
        for ids, batch_labels, batch in added:
            keys[row : row + len(ids)] = ids
            labels[row : row + len(ids)] = batch_labels
            vectors.write(row, batch)
            index.add_with_ids(batch, np.arange(row, row + len(ids), dtype=np.int64))
            row += len(ids)
        return _write(staging, index, keys, labels, meta)


def _blank_rows(size: int) -> NDArray[np.int64]:
    """Keys or labels of ``size`` rows, all removed until written: in memory (8 bytes a row),
    saved when the index is complete."""
    return np.full(size, REMOVED, np.int64)


def _write(
    staging: Path,
    index: faiss.Index,
    keys: NDArray[np.int64],
    labels: NDArray[np.int64],
    meta: Meta,
) -> Counts:
    np.save(staging / KEYS_FILE, keys)
    np.save(staging / LABELS_FILE, labels)
    (staging / META_FILE).write_text(json.dumps(dict(meta), sort_keys=True))
    faiss.write_index(index, str(staging / INDEX_FILE))
    return _counts(index, keys, labels)


def _counts(index: faiss.Index, keys: NDArray[np.int64], labels: NDArray[np.int64]) -> Counts:
    return Counts(int(index.ntotal), _distinct(labels[keys != REMOVED]))


def _distinct(values: NDArray[np.int64]) -> int:
    # Sorted, not np.unique: numpy 2.4's unique hashes, 1.3 s for 10^6 int64 against 0.02 s.
    ordered = np.sort(values)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if len(ordered) else 0


class _RowFile:
    """A new index's float16 vectors: a ``.npy`` file written and read by offset, one chunk
    at a time, and never mapped by the process that writes it. Every page written or read
    through a map counts in that process's resident memory until the map goes (the vectors
    are 256 MB at 10^6 rows): through maps, a build of 10^6 rows raised the process's peak by
    415 MB and an update of it (1,000 rows removed, 1,000 added) by 540 MB, since it read the
    previous file and wrote the new one; by offset, 178 and 53 MB (tools/index_memory.py).
    Nor are maps flushed with msync: CPython's ``mmap.flush`` holds the GIL while the kernel
    writes, 64-206 ms of every request thread a retrain at 10^6; _Staging fsyncs the file
    without it. Rows never written read as zeros: the file is created at its full length,
    sparse."""

    def __init__(self, descriptor: int, offset: int, dimension: int) -> None:
        self._descriptor = descriptor
        self._offset = offset  # where the rows begin, after the .npy header
        self._dimension = dimension
        self._row_bytes = dimension * np.dtype(np.float16).itemsize

    @classmethod
    def create(cls, path: Path, rows: int, dimension: int) -> _RowFile:
        descr = np.lib.format.dtype_to_descr(np.dtype(np.float16))
        header = {"descr": descr, "fortran_order": False, "shape": (rows, dimension)}
        with path.open("wb") as file:
            np.lib.format.write_array_header_1_0(file, header)
            offset = file.tell()
            file.truncate(offset + rows * dimension * np.dtype(np.float16).itemsize)
        return cls(os.open(path, os.O_RDWR), offset, dimension)

    def __enter__(self) -> _RowFile:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self._descriptor)

    def write(self, row: int, vectors: NDArray[np.floating[Any]]) -> None:
        data = np.ascontiguousarray(vectors, dtype=np.float16).data.cast("B")
        position = self._offset + row * self._row_bytes
        while data:
            written = os.pwrite(self._descriptor, data, position)
            data, position = data[written:], position + written

    def read(self, start: int, stop: int) -> NDArray[np.float16]:
        return _read_rows(self._descriptor, self._offset, start, stop, self._dimension)

    def rows(self, wanted: NDArray[np.int64]) -> NDArray[np.float32]:
        """The ascending rows ``wanted`` as float32, read a chunk at a time."""
        found = []
        for start in range(0, int(wanted[-1]) + 1, ADD_CHUNK):
            stop = start + ADD_CHUNK
            here = wanted[(wanted >= start) & (wanted < stop)]
            if len(here):
                chunk = self.read(start, min(stop, int(here[-1]) + 1))
                found.append(chunk[here - start].astype(np.float32))
        return np.concatenate(found)

    def blank(self, rows: NDArray[np.int64]) -> None:
        """Zeroes the ascending ``rows``: a removed row's vector leaves the file."""
        if not len(rows):
            return
        runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1)
        for run in runs:
            for start in range(int(run[0]), int(run[-1]) + 1, ADD_CHUNK):
                count = min(ADD_CHUNK, int(run[-1]) + 1 - start)
                self.write(start, np.zeros((count, self._dimension), np.float16))

    def copy(self, source: Path, rows: int) -> None:
        """The first ``rows`` rows of another index's vectors file, copied a chunk at a time."""
        descriptor = os.open(source, os.O_RDONLY)
        try:
            offset = _data_offset(descriptor)
            for start in range(0, rows, ADD_CHUNK):
                stop = min(rows, start + ADD_CHUNK)
                self.write(start, _read_rows(descriptor, offset, start, stop, self._dimension))
        finally:
            os.close(descriptor)


def _data_offset(descriptor: int) -> int:
    """Where a ``.npy`` file's data begins: after its magic string and header."""
    with os.fdopen(os.dup(descriptor), "rb") as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(file)
        else:
            np.lib.format.read_array_header_2_0(file)
        return file.tell()


def _read_rows(
    descriptor: int, offset: int, start: int, stop: int, dimension: int
) -> NDArray[np.float16]:
    rows = np.empty((stop - start, dimension), np.float16)
    into = rows.data.cast("B")
    position = offset + start * rows.itemsize * dimension
    while into:
        read = os.preadv(descriptor, [into], position)
        if read == 0:
            raise EOFError(f"an index's vectors file ends before row {stop}")
        into, position = into[read:], position + read
    return rows


class _Staging:
    """A sibling folder to write in, renamed into place when complete (a reader never opens
    half an index) and removed if anything fails."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._partial = folder.with_name(f".{folder.name}.{os.getpid()}{PARTIAL_SUFFIX}")

    def __enter__(self) -> Path:
        self._partial.mkdir(parents=True)
        return self._partial

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                for name in FILES:
                    with (self._partial / name).open("rb") as written:
                        os.fsync(written.fileno())
                self._partial.rename(self._folder)
        finally:
            shutil.rmtree(self._partial, ignore_errors=True)


def abandoned_staging(root: Path) -> set[Path]:
    """Staging folders under ``root`` (one level of collections down) that nothing has written
    to for ``ABANDONED_AFTER_S``: a build cut short (the process killed, a catch-up thread
    ended with its process). A build in progress writes its rows as they come and its files at
    the end; none of its steps at 10^6 takes more than a minute."""
    now = time.time()
    found = set()
    for partial in root.glob(f"*/.*{PARTIAL_SUFFIX}"):
        try:
            touched = max(
                [partial.stat().st_mtime, *(f.stat().st_mtime for f in partial.iterdir())]
            )
        except FileNotFoundError:
            continue  # finished or removed meanwhile
        if now - touched > ABANDONED_AFTER_S:
            found.add(partial)
    return found


def load(folder: Path) -> AnnIndex:
    """An index folder opened: the faiss index read, the arrays mapped read-only. A folder of
    the previous release has no labels and no meta: it searches as well, and the next training
    builds anew instead of updating it (nothing says what it was made from)."""
    if not (folder / INDEX_FILE).is_file():
        raise FileNotFoundError(folder)
    keys = _mapped(folder / KEYS_FILE)
    older = not (folder / META_FILE).is_file()
    return AnnIndex(
        faiss.read_index(str(folder / INDEX_FILE)),
        keys,
        np.full(len(keys), REMOVED, np.int64) if older else _mapped(folder / LABELS_FILE),
        _mapped(folder / VECTORS_FILE),
        folder,
        {} if older else json.loads((folder / META_FILE).read_text()),
    )


def read_meta(folder: Path) -> dict[str, Any] | None:
    """What an index folder records of its snapshot; None for a folder of the previous
    release, or one being removed."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _mapped(path: Path) -> NDArray[Any]:
    # A plain array over the map, not np.memmap: indexing a memmap wraps every result in a
    # memmap again (~0.2 ms of a 4 ms search).
    return np.asarray(np.load(path, mmap_mode="r"))


class ViewCache:
    """Index folders opened: one per collection (its current snapshot's), the most recently
    used ``capacity`` collections kept.

    A folder's content never changes after it is written (a new snapshot gets a new folder), so
    an opened index never goes stale; opening a collection's new folder drops its old one, whose
    faiss codes are private memory (~41 MB at 10^6). Opening reads those codes: at 10^6 15-30 ms
    on a quiet machine with the files cached, up to 460 ms on a busy one, which a search would
    wait for. So a folder is opened once however many searches ask for it at the same moment,
    and a training opens the folder it wrote ahead (``preload``), beside the one searches still
    use until it records the snapshot."""

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._views: OrderedDict[Path, tuple[Path, AnnIndex]] = OrderedDict()
        self._ahead: OrderedDict[Path, tuple[Path, AnnIndex]] = OrderedDict()
        self._opening: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, folder: Path) -> AnnIndex:
        with self._lock:
            found = self._take(folder)
            if found is not None:
                return found
            opening = self._opening.setdefault(folder, threading.Lock())
        with opening:  # the first to ask opens it; the others wait for that, then take it
            with self._lock:
                found = self._take(folder)
                if found is not None:
                    return found
            try:
                opened = load(folder)
            except BaseException:
                with self._lock:
                    self._opening.pop(folder, None)
                raise
            with self._lock:  # kept and no longer opening at once: no second opening
                self._keep(self._views, folder, opened)
                self._opening.pop(folder, None)
            return opened

    def preload(self, folder: Path, opened: AnnIndex | None = None) -> None:
        """Open ``folder`` before any search asks for it (a snapshot about to be recorded), or
        keep ``opened``, the caller's unedited copy of it; the collection's current view stays
        in use until a search asks for this one."""
        opened = load(folder) if opened is None else opened
        with self._lock:
            self._keep(self._ahead, folder, opened)

    def forget(self, folders: set[Path]) -> None:
        with self._lock:
            for views in (self._views, self._ahead):
                for folder in folders:
                    cached = views.get(folder.parent)
                    if cached is not None and cached[0] == folder:
                        del views[folder.parent]

    def _take(self, folder: Path) -> AnnIndex | None:
        """The opened index of ``folder``, if any: a preloaded one becomes its collection's
        current view. Called with the lock held."""
        cached = self._views.get(folder.parent)
        if cached is not None and cached[0] == folder:
            self._views.move_to_end(folder.parent)
            return cached[1]
        ahead = self._ahead.get(folder.parent)
        if ahead is not None and ahead[0] == folder:
            del self._ahead[folder.parent]
            self._keep(self._views, folder, ahead[1])
            return ahead[1]
        return None

    def _keep(
        self, views: OrderedDict[Path, tuple[Path, AnnIndex]], folder: Path, opened: AnnIndex
    ) -> None:
        views[folder.parent] = (folder, opened)
        views.move_to_end(folder.parent)
        while len(views) > self._capacity:
            views.popitem(last=False)
