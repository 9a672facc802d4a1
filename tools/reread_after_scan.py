"""Where a search's time goes at scale, per backend: the index's scan, and the store's re-read of
its candidates right after that scan, at once again, and after a pause.

    .venv/bin/python tools/reread_after_scan.py ../shared/facedata [--size N] [--rounds R]
        [--backends sqlite,postgresql] [--folder DIR]

For each backend, writes N enrollments as ``facegate bench scale`` does (its Gaussian vectors
with the real LFW probes' image 1 among them; PostgreSQL in a pgserver cluster, without the
HNSW index, which this does not search), builds the gallery's index of the collection
(index/gallery.py ``InProcessGallery``, which PostgreSQL's gallery extends), then for each probe
in turn: the gallery's whole search (k=1); the index's candidates alone (index/ann.py); the
re-read of those candidates (index/reads.py, the product's statement on ``Database.read_raw``)
right after that scan; the same re-read again at once; and again after a 3 ms sleep. Prints
each round's p50s and the median over the rounds.

Why: on PostgreSQL a search cost 1.5-2 ms more than on SQLite at 10^6 (BENCHMARKS.md "Scale")
while its statement alone took ~0.4 ms; this showed how much of the difference was the round
trip after the scan (which evicts the database's working set from the CPU caches while both
processes wait) rather than the statement. Since then a search answers from the index's local
rows and asks the store only for the deletion log, before its scan (the *search* column); the
re-read columns measure the path a search falls back on where that log cannot say.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from facegate.eval.scale_bench import (
    PROBES,
    RealData,
    Store,
    drop_hnsw_indexes,
    load_store,
    postgres_cluster,
    postgres_store,
    real_data,
    sqlite_store,
)
from facegate.index import ann
from facegate.index.gallery import MIN_CANDIDATES, InProcessGallery
from facegate.index.reads import StoreReads, reads_for
from facegate.service.ports import TrainedSnapshot
from facegate.store.db import Database
from facegate.store.models import Collection, Embedding
from facegate.store.snapshot import SnapshotBounds

PARTS = ("search", "scan", "re-read after scan", "re-read at once", "re-read after 3 ms sleep")
PAUSE_S = 0.003


@contextlib.contextmanager
def store_for(backend: str, root: Path) -> Iterator[Store]:
    if backend == "sqlite":
        yield sqlite_store(root / "sqlite")
        return
    with postgres_cluster(root / "cluster") as cluster:
        yield postgres_store(root / "postgresql", cluster, "reread")


def measure(store: Store, size: int, rounds: int, data: RealData) -> None:
    database = Database.from_settings(store.settings)
    try:
        if store.backend == "postgresql":
            drop_hnsw_indexes(database)
        loaded = load_store(store.settings, database, size, data, seed=10)
        database.refresh_statistics()
        with database.reading() as session:
            collection = session.get(Collection, loaded.collection_id)
            assert collection is not None
            watermark = int(session.scalar(select(func.max(Embedding.id))) or 0)
            bounds = SnapshotBounds(collection.id, collection.revision, watermark, data.recipe)
        gallery = InProcessGallery(database, store.settings)
        built = gallery.build(bounds, data.dimension, None)
        assert built.name is not None, "below the exact search limit: no index to scan"
        snapshot = TrainedSnapshot(bounds, 1, built.name, built.embeddings)
        view = ann.load(store.settings.index_dir / built.name)
        reads = reads_for(database.engine.dialect.name)
        queries = np.stack([p.query for p in data.probes if p.person in loaded.probe_rows])
        gallery.search(snapshot, data.dimension, queries[:1], 1)  # opens the index
        medians: dict[str, list[float]] = {part: [] for part in PARTS}
        for round_number in range(1, rounds + 1):
            seconds = database.read_raw(
                lambda connection: _round(
                    connection, gallery, snapshot, view, reads, queries, data.dimension
                )
            )
            p50 = {part: 1000 * statistics.median(seconds[part]) for part in PARTS}
            for part in PARTS:
                medians[part].append(p50[part])
            print(
                f"{store.backend} round {round_number}: "
                + ", ".join(f"{part} {p50[part]:.3f} ms" for part in PARTS),
                flush=True,
            )
        print(
            f"{store.backend}, median of {rounds} rounds' p50 at {size:,} "
            f"({len(queries)} probes): "
            + ", ".join(f"{part} {statistics.median(medians[part]):.3f} ms" for part in PARTS),
            flush=True,
        )
    finally:
        database.dispose()


def _round(
    connection: Any,
    gallery: InProcessGallery,
    snapshot: TrainedSnapshot,
    view: ann.AnnIndex,
    reads: StoreReads,
    queries: NDArray[np.float32],
    dimension: int,
) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {part: [] for part in PARTS}
    collection_id = snapshot.bounds.collection_id
    with contextlib.closing(reads.cursor(connection)) as cursor:

        def reread(part: str, ids: list[int]) -> None:
            started = time.perf_counter()
            found = reads.candidates(cursor, ids, collection_id, dimension)
            seconds[part].append(time.perf_counter() - started)
            assert len(found.labels) == len(ids)  # none deleted: every candidate is read

        def search(query: NDArray[np.float32]) -> None:
            started = time.perf_counter()
            gallery.search(snapshot, dimension, query[np.newaxis, :], 1)
            seconds["search"].append(time.perf_counter() - started)

        def parts(query: NDArray[np.float32]) -> None:
            started = time.perf_counter()
            ids = [int(key) for key in view.candidates(query, MIN_CANDIDATES)]
            seconds["scan"].append(time.perf_counter() - started)
            reread("re-read after scan", ids)
            reread("re-read at once", ids)
            time.sleep(PAUSE_S)
            reread("re-read after 3 ms sleep", ids)

        # Whichever comes second finds the probe's lists in the CPU caches: each comes first
        # for half of the probes.
        for number, query in enumerate(queries):
            for step in (search, parts) if number % 2 == 0 else (parts, search):
                step(query)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=PROBES)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="facegate-reread-"))
    data = real_data(args.data, args.probes, seed=10)
    for backend in args.backends.split(","):
        with store_for(backend, root) as store:
            measure(store, args.size, args.rounds, data)


if __name__ == "__main__":
    main()
