"""An approximate nearest-neighbour index over a snapshot's embeddings: faiss fast-scan PQ codes
of every row (an IVF of one list), with a memory-mapped float16 copy of the vectors to re-rank
its candidates.

Why this shape (measured with tools/ann_choice.py on 1,000,000 vectors drawn like SFace
descriptors, probes by real LFW images, BENCHMARKS.md "Scale"): face descriptors spread almost
uniformly over the sphere and a probe lies far from every stored vector but its mate's, which
defeats graph indexes — usearch's HNSW (32 links, 256 candidates) found the true nearest for 76 %
of probes at 10^6 after an 18-minute build — and makes any coarse partition weak, so a search has
to look at most of the collection (see ``LISTS``). Fast-scan PQ (4-bit codes, 2 dimensions per
code, SIMD lookup tables) makes that cheap: every code of 10^6 scanned in ~1.5 ms on one core,
and the true nearest is among the first ``CANDIDATES`` for nearly every probe; a 10^6 build
trains codebooks on a small sample and encodes each row once.

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

When the caller gives every row a text (the gallery: its enrollment id and name), the folder
also holds what a search needs to answer without the store, the *local rows*:

- ``exact.f32``: each row's vector in float32 (raw rows, no header);
- ``texts.bin`` and ``text_offsets.npy``: each row's text, its bytes from ``offsets[row]`` to
  ``offsets[row + 1]``.

Both are read by offset (``pread``), a row at a time, not mapped: a search reads the exact
vectors and texts of a few candidates only, and through a map each read would pull ~64 KB of
neighbouring pages into the process's resident memory for good (the kernel's fault-around),
~0.5 GB at 10^6 after a few thousand searches. A removed row's vector and text are zeroed. An
update shares the two files with the index it starts from instead of copying them (see
``_LocalFiles``): the one exception to a folder never changing, and one that changes only rows
that no search of that index answers.

Either way the index only proposes candidates: the caller drops those deleted since (the gallery
asks the store which) and ranks the rest by exact float32 distances — the local rows' or, where
the folder has none, the store's — so the index's quantisation costs recall only, never a wrong
distance.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import faiss
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "AnnIndex",
    "Counts",
    "LocalRows",
    "ViewCache",
    "abandoned_staging",
    "build",
    "fits",
    "load",
    "read_meta",
    "training_rows",
    "update",
]

INDEX_FILE = "ivf.faiss"
KEYS_FILE = "keys.npy"
LABELS_FILE = "labels.npy"
VECTORS_FILE = "vectors.npy"
META_FILE = "meta.json"
# The local rows, written when every row comes with a text.
EXACT_FILE = "exact.f32"
TEXTS_FILE = "texts.bin"
TEXT_OFFSETS_FILE = "text_offsets.npy"
REMOVED = -1  # the key of a row an update removed (its vector is zeroed: gone from the file)
# A folder being written is named ".NAME.PID.partial" beside where it goes; one left untouched
# this long was abandoned (see abandoned_staging).
PARTIAL_SUFFIX = ".partial"
ABANDONED_AFTER_S = 3600.0

# The index's lists: one. On this data a search has to look at most of the collection
# whatever the partition (nearly every miss is a true nearest in a list not visited), and
# fast-scan's cost per visited list outweighed what a partition saved. At 10^6 on the 945
# LFW DevTrain people with two images (the fit split; ``tools/ann_choice.py DATA --lists
# 1,512,2048 --shares 0.5,0.7 --dev-probes``, search p50 on one core, median of 5 rounds):
# 2,048 lists (k-means) visited half-way found the true nearest for 99.7 % of probes in
# 2.86 ms, 512 lists at 70 % for 99.9 % in 1.79 ms, one list (every code) for all of them in
# 1.41 ms; its build (ann.build, files included) took 2.5 s, the 2,048 lists' faiss index
# alone 6.8 (k-means, and the assignment of every row to a list).
# An IVF of one list rather than a flat index for its ids and its removals (faiss's flat
# fast-scan index has neither). A search's time grows with the rows: ~1.4 ms a million.
LISTS = 1
# An older release's index of several lists (a coarse partition, trained by k-means) is
# searched through all of them, and rebuilt by the next training instead of updated.

# Rows that train the PQ codebooks: faiss trains each sub-quantizer's 16 centroids on 4,096 of
# them drawn at random (256 a centroid), so many more would only be read and dropped.
TRAINING_ROWS = 16_384
# Candidates taken from the codes before the float16 re-rank (measured with 2,048 lists, half
# of them visited: 128 instead of 256 lost one more probe of 735, 1,024 found none more).
CANDIDATES = 256
# faiss's OpenMP threads while building (0: every core); a search uses the caller's thread only.
BUILD_THREADS = 0
# Rows read, written or converted to float32 at a time while building or updating: bounds each
# copy (a chunk of float32 rows is 25 MB at 128 dimensions).
ADD_CHUNK = 50_000
# Bytes of row texts copied or zeroed at a time.
TEXT_CHUNK = 1 << 22


class Counts(NamedTuple):
    """What a written index holds: rows a search can return, and their distinct labels."""

    live: int
    labels: int


Meta = Mapping[str, int | str]
# What builds and updates read: (embedding ids, labels, vectors) of some rows at a time, and
# optionally a text per row (the local rows).
Batch = (
    tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]
    | tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], Sequence[bytes]]
)
Batches = Iterable[Batch]
# A batch as a build or update takes it apart: texts None where it carries none.
_Parts = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], Sequence[bytes] | None]


def fits(dimension: int) -> bool:
    """Fast-scan PQ pairs the dimensions (2 per 4-bit code)."""
    return dimension >= 2 and dimension % 2 == 0


class LocalRows:
    """A folder's exact vectors and row texts, read by offset a row at a time (see the
    module's docstring: mapped, they would grow every process's resident memory)."""

    def __init__(self, folder: Path, dimension: int) -> None:
        self._exact = os.open(folder / EXACT_FILE, os.O_RDONLY)
        try:
            self._texts = os.open(folder / TEXTS_FILE, os.O_RDONLY)
        except OSError:
            os.close(self._exact)
            raise
        # Closed with the last reference to the opened index (a cache may drop it any time).
        weakref.finalize(self, _close_all, self._exact, self._texts)
        self._offsets: NDArray[np.int64] = _mapped(folder / TEXT_OFFSETS_FILE)
        self._dimension = dimension

    def vectors(self, rows: NDArray[np.int64]) -> NDArray[np.float32]:
        """The float32 vectors of ``rows``, in their order."""
        found = np.empty((len(rows), self._dimension), np.float32)
        for place, row in enumerate(rows):
            _read_into(self._exact, found[place], int(row) * found[0].nbytes)
        return found

    def texts(self, rows: NDArray[np.int64]) -> list[bytes]:
        """The texts of ``rows``, in their order (empty for a removed row)."""
        found = []
        for start, stop in zip(self._offsets[rows], self._offsets[rows + 1], strict=True):
            text = os.pread(self._texts, int(stop - start), int(start))
            if len(text) != stop - start:
                raise EOFError("an index's texts file ends before its offsets do")
            found.append(text)
        return found


def _close_all(*descriptors: int) -> None:
    for descriptor in descriptors:
        os.close(descriptor)


@dataclass(frozen=True)
class AnnIndex:
    """One snapshot's index, opened: the faiss index, the row arrays and the caller's meta,
    and its local rows when the folder has them."""

    index: faiss.Index
    keys: NDArray[np.int64]
    labels: NDArray[np.int64]
    vectors: NDArray[np.float16]
    folder: Path  # where it was read from: an update copies its vectors file from there
    meta: Meta = field(default_factory=dict)
    local: LocalRows | None = None

    @property
    def live(self) -> int:
        """Rows not removed: what a search can return."""
        return int(self.index.ntotal)

    @property
    def lists(self) -> int:
        """The faiss index's lists: ``LISTS``, or more in an older release's index."""
        return int(faiss.extract_index_ivf(self.index).nlist)

    def held_keys(self) -> NDArray[np.int64]:
        return np.asarray(self.keys[self.keys != REMOVED], dtype=np.int64)

    def counts(self) -> Counts:
        return _counts(self.index, self.keys, self.labels)

    def candidates(self, query: NDArray[np.float32], count: int) -> NDArray[np.int64]:
        """The embedding ids of up to ``count`` nearest rows, nearest first."""
        return np.asarray(self.keys[self.candidate_rows(query, count)], dtype=np.int64)

    def candidate_rows(self, query: NDArray[np.float32], count: int) -> NDArray[np.int64]:
        """The row numbers of up to ``count`` nearest rows, nearest first: the codes propose
        ``max(count, CANDIDATES)`` rows, their float16 vectors rank them."""
        if self.live == 0:
            return np.zeros(0, np.int64)
        params = faiss.SearchParametersIVF()
        params.nprobe = self.lists  # every list: see LISTS
        faiss.omp_set_num_threads(1)  # per thread: a request never fans out over the cores
        wanted = min(self.live, max(count, CANDIDATES))
        _, found = self.index.search(query.reshape(1, -1), wanted, params=params)
        rows = found[0][found[0] >= 0]
        differences = self.vectors[rows].astype(np.float32) - query.reshape(1, -1)
        distances = np.einsum("ij,ij->i", differences, differences)
        return np.asarray(rows[np.argsort(distances, kind="stable")[:count]], dtype=np.int64)


def training_rows(size: int) -> NDArray[np.int64]:
    """Which of ``size`` rows (by position) train the index of them: ``TRAINING_ROWS`` (or
    all), evenly spread."""
    return np.linspace(0, size - 1, min(size, TRAINING_ROWS)).astype(np.int64)


def build(
    folder: Path,
    dimension: int,
    batches: Batches,
    size: int,
    meta: Meta,
    training: NDArray[np.float32],
) -> Counts:
    """A new index of up to ``size`` rows from ``batches`` of (embedding ids, labels, vectors
    [, texts]), written to ``folder`` atomically with ``meta``, with local rows when the
    batches carry texts (all of them or none). The codebooks are trained first, on
    ``training`` (the vectors of the rows ``training_rows`` names, or a sample like
    them); then each batch is written and added to the index as it comes, in a thread of its
    own (``_Behind``) while the caller reads the next batch. Rows the batches fall short of
    (deleted while they were read) stay blank."""
    if not len(training):
        raise RuntimeError("no rows to index")
    index = faiss.index_factory(dimension, f"IVF{LISTS},PQ{dimension // 2}x4fs")
    # Codes of the vectors themselves, not of their offsets from a list's centroid: one
    # lookup table per search instead of one per visited list.
    faiss.extract_index_ivf(index).by_residual = False
    faiss.omp_set_num_threads(_build_threads())
    index.train(np.ascontiguousarray(training, dtype=np.float32))
    del training  # the caller's sample (8 MB at 128 dimensions) is not held through the stream
    with (
        _Staging(folder) as staging,
        _RowFile.create(staging / VECTORS_FILE, size, dimension) as vectors,
        contextlib.ExitStack() as opened,
    ):
        keys, labels = _blank_rows(size), _blank_rows(size)
        local: _LocalFiles | None = None
        row = 0
        with _Behind() as behind:
            for number, batch in enumerate(batches):
                parts = _parts(batch)
                if number == 0 and parts[3] is not None:
                    local = opened.enter_context(_LocalFiles(staging, size, dimension))
                elif (parts[3] is None) != (local is None):
                    raise ValueError("either every batch of an index carries texts or none does")
                behind.run(
                    functools.partial(_store, index, row, parts, keys, labels, vectors, local)
                )
                row += len(parts[0])
        if row == 0:
            raise RuntimeError("no rows to index")
        if local is not None:
            local.finish(row)
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
    vectors and texts leave the files), new rows appended, and the faiss index edited instead
    of rebuilt. Local rows are kept when ``previous`` has them (then every added batch must
    carry texts), in files shared with ``previous`` where they can be (``_LocalFiles``).
    ``previous`` must be a private copy (:func:`load`, not a cached view that searches use):
    it is edited."""
    index = previous.index
    old_rows = len(previous.keys)
    size = old_rows + added_count
    dimension = previous.vectors.shape[1]
    with (
        _Staging(folder) as staging,
        _RowFile.create(staging / VECTORS_FILE, size, dimension) as vectors,
        contextlib.ExitStack() as opened,
    ):
        vectors.copy(previous.folder / VECTORS_FILE, old_rows)
        local: _LocalFiles | None = None
        if previous.local is not None:
            made = _LocalFiles.after(staging, previous.folder, old_rows, size, dimension)
            local = opened.enter_context(made)
        keys, labels = _blank_rows(size), _blank_rows(size)
        keys[:old_rows] = previous.keys
        labels[:old_rows] = previous.labels
        gone = np.flatnonzero(np.isin(previous.keys, removed))
        if len(gone):
            _remove(index, gone.astype(np.int64))
            keys[gone] = REMOVED
            labels[gone] = REMOVED
            vectors.blank(gone)
            if local is not None:
                local.blank(gone)
        row = old_rows
        faiss.omp_set_num_threads(_build_threads())
        for batch in added:
            parts = _parts(batch)
            if local is not None and parts[3] is None:
                raise ValueError("rows added to an index with local rows need texts")
            _store(index, row, parts, keys, labels, vectors, local)
            row += len(parts[0])
        if local is not None:
            local.finish(row)
        return _write(staging, index, keys, labels, meta)


def _remove(index: faiss.Index, rows: NDArray[np.int64]) -> None:
    """faiss's ``remove_ids`` of a fast-scan index, mended. It moves each list's last codes into
    the holes and shrinks the list, but leaves the moved codes' old bytes in the list's last
    block, and the next add packs its codes into them by OR: in faiss 1.15 a row added after a
    removal from its list was no longer found (tests/unit/test_gallery.py). The live codes of
    each list's last block are packed again into zeroed bytes."""
    index.remove_ids(faiss.IDSelectorBatch(rows))
    ivf = faiss.extract_index_ivf(index)
    assert ivf.invlists is not None  # an IVF index always has its lists
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    packer = ivf.get_CodePacker()
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        live = size % packer.nvec  # codes in the last block, when it is not full
        if not live:
            continue
        codes = faiss.rev_swig_ptr(
            lists.get_codes(number), -(-size // packer.nvec) * packer.block_size
        )
        last = codes.reshape(-1, packer.block_size)[-1:]  # a view: the packer writes through it
        tail = [packer.unpack_1(last, place) for place in range(live)]
        last[:] = 0
        for place, code in enumerate(tail):
            packer.pack_1(code, place, last)


def _build_threads() -> int:
    return BUILD_THREADS or os.cpu_count() or 1


class _Behind:
    """Runs a build's jobs (each batch written and added to its faiss index) in a thread of
    its own, one at a time and in order, while the build's thread reads the next batch: the
    job's file writes and faiss's add (encoding each row) let go of the GIL. The thread starts
    from the build's, so it runs at the build's priority (priority.py)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(
            1,
            thread_name_prefix="index-build",
            initializer=faiss.omp_set_num_threads,
            initargs=(_build_threads(),),
        )
        self._pending: Future[None] | None = None

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        try:
            if kind is None:
                self._wait()
        finally:
            self._pool.shutdown(wait=True)  # never leaves the thread writing to a freed index

    def run(self, job: Callable[[], None]) -> None:
        """Queues ``job``, once the one before it is done (its failure is raised here)."""
        self._wait()
        self._pending = self._pool.submit(job)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()


def _parts(
    batch: Batch,
) -> _Parts:
    if len(batch) == 4:
        return batch
    ids, labels, vectors = batch
    return ids, labels, vectors, None


def _store(
    index: faiss.Index,
    row: int,
    parts: _Parts,
    keys: NDArray[np.int64],
    labels: NDArray[np.int64],
    vectors: _RowFile,
    local: _LocalFiles | None,
) -> None:
    """A batch's keys, labels, float16 vectors and (into ``local``, which needs its texts)
    local rows written from ``row`` on, and its vectors added to ``index`` under those row
    numbers (its ids in faiss)."""
    ids, batch_labels, batch_vectors, texts = parts
    placed = np.arange(row, row + len(ids), dtype=np.int64)
    keys[row : row + len(ids)] = ids
    labels[row : row + len(ids)] = batch_labels
    vectors.write(row, batch_vectors)
    if local is not None and texts is not None:
        local.write(row, batch_vectors, texts)
    index.add_with_ids(batch_vectors, placed)


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
    """A new index's float16 vectors (or its local rows' float32 ones): a ``.npy`` file
    written (and an update's copied) by offset, one chunk at a time, and never mapped by the
    process that writes it. Every page written or read through a map counts in that process's
    resident memory until the map goes (the vectors are 256 MB at 10^6 rows): through maps, a
    build of 10^6 rows raised the process's peak by 415 MB and an update of it (1,000 rows
    removed, 1,000 added) by 540 MB, since it read the previous file and wrote the new one; by
    offset, 178 and 53 MB (tools/index_memory.py). Nor are maps flushed with msync: CPython's
    ``mmap.flush`` holds the GIL while the kernel writes, 64-206 ms of every request thread a
    retrain at 10^6; _Staging fsyncs the file without it. Rows never written read as zeros:
    the file is created at its full length, sparse."""

    def __init__(self, descriptor: int, offset: int, dimension: int, dtype: type) -> None:
        self._descriptor = descriptor
        self._offset = offset  # where the rows begin, after the .npy header (0: a raw file)
        self._dimension = dimension
        self._dtype = np.dtype(dtype)
        self._row_bytes = dimension * self._dtype.itemsize

    @classmethod
    def create(cls, path: Path, rows: int, dimension: int, dtype: type = np.float16) -> _RowFile:
        descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
        header = {"descr": descr, "fortran_order": False, "shape": (rows, dimension)}
        with path.open("wb") as file:
            np.lib.format.write_array_header_1_0(file, header)
            offset = file.tell()
            file.truncate(offset + rows * dimension * np.dtype(dtype).itemsize)
        return cls(os.open(path, os.O_RDWR), offset, dimension, dtype)

    @classmethod
    def raw(cls, path: Path, rows: int, dimension: int, dtype: type) -> _RowFile:
        """Rows without a header, in a new file or one shared with another index (its rows
        first), made ``rows`` long."""
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(descriptor, rows * dimension * np.dtype(dtype).itemsize)
        return cls(descriptor, 0, dimension, dtype)

    def __enter__(self) -> _RowFile:
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self._descriptor)

    def write(self, row: int, vectors: NDArray[np.floating[Any]]) -> None:
        data = np.ascontiguousarray(vectors, dtype=self._dtype).data.cast("B")
        _write_at(self._descriptor, data, self._offset + row * self._row_bytes)

    def blank(self, rows: NDArray[np.int64]) -> None:
        """Zeroes the ascending ``rows``: a removed row's vector leaves the file."""
        for first, last in _runs(rows):
            for start in range(first, last + 1, ADD_CHUNK):
                count = min(ADD_CHUNK, last + 1 - start)
                self.write(start, np.zeros((count, self._dimension), self._dtype))

    def copy(self, source: Path, rows: int) -> None:
        """The first ``rows`` rows of another index's file of this format, a chunk at a time."""
        descriptor = os.open(source, os.O_RDONLY)
        try:
            offset = _data_offset(descriptor) if self._offset else 0
            length = rows * self._row_bytes
            _copy_bytes(
                descriptor,
                offset,
                self._descriptor,
                self._offset,
                length,
                self._row_bytes * ADD_CHUNK,
            )
        finally:
            os.close(descriptor)


class _TextFile:
    """A new index's row texts: their bytes appended to a file as the rows come, the offsets
    kept in memory (8 bytes a row) and saved when the index is complete."""

    def __init__(self, path: Path, rows: int) -> None:
        """A new file at ``path``, or the one there (shared with another index: ``extend``)."""
        self._path = path
        self._descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.offsets = np.zeros(rows + 1, np.int64)

    def extend(self, offsets: NDArray[np.int64], rows: int) -> None:
        """The file holds another index's first ``rows`` rows (``offsets``): written after."""
        self.offsets[: rows + 1] = offsets[: rows + 1]

    def close(self) -> None:
        os.close(self._descriptor)

    def write(self, row: int, texts: Sequence[bytes]) -> None:
        """The texts of the rows from ``row`` on; every row before it written already."""
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        start = int(self.offsets[row])
        self.offsets[row + 1 : row + 1 + len(texts)] = start + np.cumsum(lengths)
        _write_at(self._descriptor, memoryview(b"".join(texts)), start)

    def copy(self, source: Path, offsets: NDArray[np.int64], rows: int) -> None:
        """The first ``rows`` rows of another index's texts, a chunk of bytes at a time."""
        self.offsets[: rows + 1] = offsets[: rows + 1]
        descriptor = os.open(source, os.O_RDONLY)
        try:
            _copy_bytes(descriptor, 0, self._descriptor, 0, int(offsets[rows]), TEXT_CHUNK)
        finally:
            os.close(descriptor)

    def blank(self, rows: NDArray[np.int64]) -> None:
        """Zeroes the texts of the ascending ``rows`` (kept in place: offsets stay)."""
        for first, last in _runs(rows):
            begin, end = int(self.offsets[first]), int(self.offsets[last + 1])
            for start in range(begin, end, TEXT_CHUNK):
                count = min(TEXT_CHUNK, end - start)
                _write_at(self._descriptor, memoryview(bytes(count)), start)

    def finish(self, rows: int) -> None:
        """Rows after the first ``rows`` never came: empty. Saves the offsets beside the file."""
        self.offsets[rows + 1 :] = self.offsets[rows]
        np.save(self._path.with_name(TEXT_OFFSETS_FILE), self.offsets)


class _LocalFiles:
    """A new index's local rows being written: float32 vectors (raw rows) and texts.

    An update shares the previous index's two files instead of copying them (hard links; 0.6 GB
    at 10^6, read from disk when the page cache has dropped them: an update took 2.4 s instead
    of 1.0): it appends its rows after the previous index's and zeroes the removed rows in
    place. The previous index reads its own rows only, and any search of it drops the removed
    rows by the deletion log (index/gallery.py), so neither change alters what it answers.
    Shared only while nothing was appended since: a second update of the same index (an update
    that failed, or a branch: the previous snapshot's index updated again) finds the files
    longer than its rows and copies them, so no two indexes ever write the same rows."""

    def __init__(self, staging: Path, rows: int, dimension: int) -> None:
        self._vectors = _RowFile.raw(staging / EXACT_FILE, rows, dimension, np.float32)
        self._texts = _TextFile(staging / TEXTS_FILE, rows)

    @classmethod
    def after(
        cls, staging: Path, previous: Path, old_rows: int, rows: int, dimension: int
    ) -> _LocalFiles:
        """The files of an update of the index in ``previous`` (of ``old_rows`` rows) to
        ``rows``: shared when they end where its rows do, copied otherwise."""
        offsets = _mapped(previous / TEXT_OFFSETS_FILE)
        lengths = {
            EXACT_FILE: old_rows * dimension * np.dtype(np.float32).itemsize,
            TEXTS_FILE: int(offsets[old_rows]),
        }
        shared = all((previous / name).stat().st_size == size for name, size in lengths.items())
        if shared:
            try:
                for name in lengths:
                    os.link(previous / name, staging / name)
            except OSError:  # a file system without hard links: copied instead
                for name in lengths:
                    (staging / name).unlink(missing_ok=True)
                shared = False
        made = cls(staging, rows, dimension)
        if shared:
            made._texts.extend(offsets, old_rows)
        else:
            made._vectors.copy(previous / EXACT_FILE, old_rows)
            made._texts.copy(previous / TEXTS_FILE, offsets, old_rows)
        return made

    def __enter__(self) -> _LocalFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self._vectors.__exit__()
        self._texts.close()

    def write(self, row: int, vectors: NDArray[np.float32], texts: Sequence[bytes]) -> None:
        if len(texts) != len(vectors):
            raise ValueError(f"{len(texts)} texts for {len(vectors)} rows")
        self._vectors.write(row, vectors)
        self._texts.write(row, texts)

    def blank(self, rows: NDArray[np.int64]) -> None:
        self._vectors.blank(rows)
        self._texts.blank(rows)

    def finish(self, rows: int) -> None:
        self._texts.finish(rows)


def _runs(rows: NDArray[np.int64]) -> list[tuple[int, int]]:
    """The first and last row of each run of consecutive ``rows`` (ascending)."""
    if not len(rows):
        return []
    runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1)
    return [(int(run[0]), int(run[-1])) for run in runs]


def _copy_bytes(
    source: int, source_at: int, target: int, target_at: int, length: int, chunk: int
) -> None:
    """``length`` bytes from one open file to another, ``chunk`` at a time."""
    done = 0
    while done < length:
        data = os.pread(source, min(chunk, length - done), source_at + done)
        if not data:
            raise EOFError("an index file ends before the rows asked for")
        _write_at(target, memoryview(data), target_at + done)
        done += len(data)


def _write_at(descriptor: int, data: memoryview, position: int) -> None:
    while data:
        written = os.pwrite(descriptor, data, position)
        data, position = data[written:], position + written


def _read_into(descriptor: int, into_array: NDArray[Any], position: int) -> None:
    """Fills the contiguous ``into_array`` from the file at ``position``."""
    into = into_array.data.cast("B")
    while into:
        read = os.preadv(descriptor, [into], position)
        if read == 0:
            raise EOFError("an index file ends before the rows asked for")
        into, position = into[read:], position + read


def _data_offset(descriptor: int) -> int:
    """Where a ``.npy`` file's data begins: after its magic string and header."""
    with os.fdopen(os.dup(descriptor), "rb") as file:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(file)
        else:
            np.lib.format.read_array_header_2_0(file)
        return file.tell()


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
                for written_path in self._partial.iterdir():
                    with written_path.open("rb") as written:
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
    """An index folder opened: the faiss index read, the arrays mapped read-only, the local
    rows' files opened when it has them. A folder of an older release has no labels and no
    meta, or no local rows: it searches as well (its candidates re-read from the store), and
    the next training builds anew instead of updating it."""
    if not (folder / INDEX_FILE).is_file():
        raise FileNotFoundError(folder)
    keys = _mapped(folder / KEYS_FILE)
    older = not (folder / META_FILE).is_file()
    vectors = _mapped(folder / VECTORS_FILE)
    return AnnIndex(
        faiss.read_index(str(folder / INDEX_FILE)),
        keys,
        np.full(len(keys), REMOVED, np.int64) if older else _mapped(folder / LABELS_FILE),
        vectors,
        folder,
        {} if older else json.loads((folder / META_FILE).read_text()),
        LocalRows(folder, vectors.shape[1]) if (folder / EXACT_FILE).is_file() else None,
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
