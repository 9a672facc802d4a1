"""``facegate bench scale DATA``: training, search, memory and deletion at 10^4 … 10^6 enrollments.

Protocol. For each size N (``--sizes``) and backend (``--backends``: SQLite in a fresh data
folder, PostgreSQL in a fresh database of a ``pgserver`` cluster), one API key, one collection
and N enrollments of one embedding each are written straight into the project's tables
(``store/models.py``) with SQLAlchemy Core, in batches of ``BATCH`` rows per ``executemany``
inside one transaction per batch: the collection at revision 1, every member added at revision 1,
so the store looks as if N people had been enrolled and added. Going through HTTP instead would
measure the detector and recogniser N times, which is not what this bench is about.

Vectors. Synthetic descriptors are drawn from a Gaussian (mean and full covariance) fitted to
real SFace descriptors of the LFW View 1 DevTrain people (up to ``FIT_PER_PERSON`` images each,
computed by the project's engine and cached in the data folder's ``eval-cache/``, never in the
repository), then scaled to unit length as SFace's are. The run prints the impostor cosine
distribution of random pairs (mean, std, 99.9th percentile) of the real descriptors beside the
synthetic ones' so the match can be judged. ``--probes`` real people outside DevTrain, with at
least two LFW images, are enrolled from their image 1 (its real descriptor placed at a random row
among the synthetic ones) and probed with image 2: its descriptor for direct search, its JPEG
over HTTP. The bench keeps every loaded vector in memory (N x 128 float32: 512 MB at 10^6).

Figures per size and backend:

* ahead: what the servers spent preparing the collection's index in the background after they
  started (service/ahead.py; the "approximate index prepared ahead" log line), which the bench
  waits for before it trains, as an import through the API (hours at 10^6) would have let
  them; ahead wait: from the servers' start until it was done (the polls' delay included).
  ``FACEGATE_INDEX_AHEAD_S=0`` measures the first training without it.
* train: ``POST /v1/train`` until the collection's status is ``ready`` (the first training);
  retrain: the same after ``EXTRA`` more enrollments are written the same way (revision 2).
* index build: what the gallery's ``build`` took in that first training (the server's
  "approximate index built", "updated" or "reused" log line — reused: the index prepared
  ahead held the snapshot already, so the training recorded it; 0 when the snapshot is
  searched exactly). HNSW, on PostgreSQL: the recipe's pgvector index made after the load
  (``gallery.open``; dropped before the load, as an operator would for a bulk load); VACUUM:
  the loaded tables vacuumed after it, as an operator would (without it autovacuum's first
  pass over the new rows could fall in the search measurements; what autovacuum was doing as
  they began and ended is in the JSON, ``autovacuum_during_search``); ANALYZE: what the first
  training spent refreshing the planner's statistics that the load left stale (0: autovacuum
  had).
* RSS of each of two server processes on the same store after warm-up and ``WARM_IDENTIFIES``
  (``--warm-identifies``) identifies spread over both (VmRSS and VmHWM from /proc).
* DB size: SQLite's database, WAL and index files; PostgreSQL's ``pg_database_size``.
* search p50/p99: the gallery's ``search`` called in this process (``make_gallery``), one query
  at a time, k=1 and k=10, after the store's files were read once into the OS cache (warm: the
  seconds that took; ``read_store_files``); k=1 cold: the same before that; recall@1 and
  recall@10 of those answers against exact search (numpy over the vectors kept in memory).
* another machine, on PostgreSQL: pgvector alone (k=1 search p50 and recall@1), which is what
  a machine without the snapshot's index folder answers with, and the seconds such a machine
  (a gallery on a second data folder) takes from its first search until it has built its own.
* identify p50 and match p50 over HTTP on one server with the same probe JPEGs, so
  "identify <= match + 10 ms" can be read off.
* deletion delay: ``CLIENTS`` threads send identify and match in a loop to both servers, in
  three windows of ``DELETION_WINDOW_S``: before; after one enrollment of the big collection is
  deleted (``DELETE /v1/enroll``); and from the retrain that follows (``POST /v1/train``, until
  ready) to ``DELETION_WINDOW_S`` after it. Each window's worst and p99 latency are reported;
  a deletion's delay is the worst after it less the worst before (goal: <= 100 ms), and the
  retrain's likewise. On a machine with fewer cores than clients + servers, the worst before
  is itself the queueing of requests behind each other.

The figures are printed as a table and written as JSON (``--out``; default
``eval-scale/scale.json`` in facegate's data folder, as the other evaluations do).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import make_url

from facegate.config import TTA, Settings
from facegate.engine.align import VIEW_INDEX
from facegate.engine.zoo import REGISTRY
from facegate.eval.lfw import _lfw_dir, engine_settings, facegate_descriptors
from facegate.eval.lfw_data import image_path
from facegate.eval.report import record
from facegate.eval.serve_process import ServeProcess, start_ready
from facegate.eval.tail import dev_people, people_counts
from facegate.service.keys import create_key
from facegate.store.db import Database
from facegate.store.models import Collection, CollectionMember, Embedding, Enrollment
from facegate.store.vectors import to_blob

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
BACKENDS = ("sqlite", "postgresql")
BATCH = 20_000  # rows per executemany: large enough to amortise, small enough for memory
EXTRA = 1_000  # enrollments added before the retrain (the incremental case)
# Real probes asked for: every one LFW has (735). With 200, a recall@1 of 0.99 is two misses
# and one more or less moves it by 0.005: visiting 30 % of the lists, 200 read 0.990 where 735
# read 0.977-0.980.
PROBES = 1_000
# The longest the bench waits for the servers to prepare an index ahead of its first training:
# two polls, then a build (~25 s at 10^6 on 2 cores).
AHEAD_TIMEOUT_S = 300.0
FIT_PER_PERSON = 3  # DevTrain images per person in the fit: Bush's 530 would dominate it
COSINE_PAIRS = 200_000  # random pairs for the impostor cosine check
WARM_IDENTIFIES = 300  # identifies spread over the two servers before RSS is read
HTTP_SAMPLES = 60  # probe images timed through identify and match each
CLIENTS = 4
DELETION_WINDOW_S = 5.0
TRAIN_TIMEOUT_S = 3 * 3600
POLL_S = 0.2
EXACT_CHUNK = 50_000  # gallery rows per block of exact search: bounded memory at any N


# -- synthetic descriptors -------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianModel:
    """Mean and full covariance of real descriptors; samples are scaled to unit length."""

    mean: NDArray[np.float64]
    covariance: NDArray[np.float64]

    @classmethod
    def fit(cls, descriptors: NDArray[np.floating]) -> GaussianModel:
        data = np.asarray(descriptors, np.float64)
        return cls(data.mean(axis=0), np.cov(data, rowvar=False))

    def sampler(self, seed: int) -> Callable[[int], NDArray[np.float32]]:
        """A function drawing n unit vectors at a time from one seeded stream."""
        rng = np.random.default_rng(seed)
        # The covariance of unit vectors is singular along their mean's direction only to
        # rounding; a tiny ridge keeps Cholesky defined.
        ridge = 1e-9 * float(np.trace(self.covariance)) / len(self.mean)
        factor = np.linalg.cholesky(self.covariance + ridge * np.eye(len(self.mean)))

        def draw(n: int) -> NDArray[np.float32]:
            rows = rng.standard_normal((n, len(self.mean))) @ factor.T + self.mean
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            return rows.astype(np.float32)

        return draw

    def save(self, path: Path, source: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, mean=self.mean, covariance=self.covariance, source=np.array(source))

    @classmethod
    def load(cls, path: Path, source: str) -> GaussianModel | None:
        """The cached fit when it was made from the same images (None otherwise)."""
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["source"]) != source:
                return None
            return cls(stored["mean"], stored["covariance"])


def cosine_stats(
    vectors: NDArray[np.float32],
    owners: Sequence[str] | None,
    pairs: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Cosine similarity of random pairs of distinct rows (of distinct owners when given): mean,
    standard deviation and 99.9th percentile."""
    a = rng.integers(0, len(vectors), pairs)
    b = rng.integers(0, len(vectors), pairs)
    keep = a != b
    if owners is not None:
        owner = np.asarray(owners)
        keep &= owner[a] != owner[b]
    a, b = a[keep], b[keep]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = np.einsum("ij,ij->i", unit[a], unit[b]).astype(np.float64)
    return {
        "pairs": len(cosines),
        "mean": float(cosines.mean()),
        "std": float(cosines.std()),
        "p99_9": float(np.quantile(cosines, 0.999)),
    }


# -- exact search and recall -----------------------------------------------------------------


def exact_top_k(
    gallery: NDArray[np.float32], queries: NDArray[np.float32], k: int, chunk: int = EXACT_CHUNK
) -> NDArray[np.int64]:
    """Row indices of the k nearest gallery rows (Euclidean) per query, nearest first; the
    gallery is read in blocks so the distance matrix never exceeds queries x ``chunk``."""
    queries = np.atleast_2d(np.asarray(queries, np.float32))
    k = min(k, len(gallery))
    best_d = np.full((len(queries), 0), np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    q_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
    for start in range(0, len(gallery), chunk):
        block = gallery[start : start + chunk]
        squared = q_sq + np.einsum("ij,ij->i", block, block)[None, :] - 2.0 * (queries @ block.T)
        take = min(k, block.shape[0])
        part = np.argpartition(squared, take - 1, axis=1)[:, :take]
        cand_d = np.concatenate([best_d, np.take_along_axis(squared, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(cand_d, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(cand_d, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_i


def recall_at(found: Sequence[Sequence[str]], exact: Sequence[Sequence[str]], k: int) -> float:
    """Mean share of the exact k nearest that the search returned in its first k."""
    if not exact:
        return float("nan")
    shares = [
        len(set(f[:k]) & set(e[:k])) / max(1, min(k, len(e)))
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(shares))


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q)) if seconds else float("nan")


# -- the table -------------------------------------------------------------------------------

# (key in a result row, column heading, format)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("size", "N", "{:,}"),
    ("backend", "backend", "{}"),
    ("load_rows_per_s", "load rows/s", "{:,.0f}"),
    ("train_s", "train s", "{:.1f}"),
    ("retrain_s", "retrain s", "{:.1f}"),
    ("ahead_s", "ahead s", "{:.1f}"),
    ("ahead_wait_s", "ahead wait s", "{:.1f}"),
    ("index_build_s", "index s", "{:.1f}"),
    ("hnsw_build_s", "HNSW s", "{:.0f}"),
    ("vacuum_s", "VACUUM s", "{:.0f}"),
    ("analyze_s", "ANALYZE s", "{:.1f}"),
    ("catch_up_s", "catch-up s", "{:.1f}"),
    ("rss_mb", "RSS MB a/b", "{}"),
    ("hwm_mb", "HWM MB a/b", "{}"),
    ("hwm_end_mb", "HWM end MB a/b", "{}"),
    ("db_mb", "DB MB", "{:,.0f}"),
    ("search_k1_cold_p50_ms", "k1 cold p50", "{:.2f}"),
    ("warm_s", "warm s", "{:.1f}"),
    ("search_k1_p50_ms", "k1 p50", "{:.2f}"),
    ("search_k1_p99_ms", "k1 p99", "{:.2f}"),
    ("search_k10_p50_ms", "k10 p50", "{:.2f}"),
    ("search_k10_p99_ms", "k10 p99", "{:.2f}"),
    ("recall_at_1", "R@1", "{:.4f}"),
    ("recall_at_10", "R@10", "{:.4f}"),
    ("pgvector_k1_p50_ms", "pgvector p50", "{:.2f}"),
    ("pgvector_recall_at_1", "pgvector R@1", "{:.4f}"),
    ("identify_p50_ms", "ident p50", "{:.0f}"),
    ("match_p50_ms", "match p50", "{:.0f}"),
    ("worst_before_delete_ms", "worst before", "{:.0f}"),
    ("worst_after_delete_ms", "after del", "{:.0f}"),
    ("worst_around_retrain_ms", "retrain", "{:.0f}"),
)


def _cell(row: dict[str, Any], key: str, form: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return "/".join(f"{v:.0f}" for v in value)
    if isinstance(value, float) and not np.isfinite(value):
        return "-"
    return form.format(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table (times in ms unless the heading says s)."""
    cells = [[_cell(row, key, form) for key, _, form in COLUMNS] for row in rows]
    headings = [heading for _, heading, _ in COLUMNS]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headings)]
    lines = [
        "| " + " | ".join(h.rjust(w) for h, w in zip(headings, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    return "\n".join(lines)


# -- real data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    person: str
    enrolled: NDArray[np.float32]  # image 1's descriptor: a row of the gallery
    query: NDArray[np.float32]  # image 2's descriptor
    jpeg: Path  # image 2 itself, sent over HTTP


@dataclass(frozen=True)
class RealData:
    model: GaussianModel
    probes: list[Probe]
    recipe: str
    tta: str
    dimension: int
    fit_check: dict[str, Any]


def real_data(data_dir: Path, probes: int, seed: int, *, dev_probes: bool = False) -> RealData:
    """The fitted Gaussian (cached), its check against the real impostor cosines, and the
    probes; descriptors by the project's engine, cached by eval/lfw.py's descriptor cache.
    The probes are people outside DevTrain (what the bench reports on), or with
    ``dev_probes`` DevTrain people (the fit split: what a setting is chosen on)."""
    lfw_dir = _lfw_dir(data_dir)
    counts = people_counts(lfw_dir)
    fit_people = dev_people(lfw_dir, "pairsDevTrain.txt")
    fitted = set(fit_people)
    pool = sorted(p for p, n in counts.items() if n >= 2 and (p in fitted) == dev_probes)
    chosen = random.Random(seed).sample(pool, min(probes, len(pool)))
    base = Settings()
    settings = engine_settings(base.detector, base.recognizer)
    spec = REGISTRY[settings.recognizer]
    assert spec.recipe is not None
    fit_paths = [
        image_path(p, n) for p in fit_people for n in range(1, min(counts[p], FIT_PER_PERSON) + 1)
    ]
    probe_paths = [image_path(p, n) for p in chosen for n in (1, 2)]
    tta: TTA = base.tta or cast(TTA, spec.default_tta)  # as FaceEngine resolves it
    run = facegate_descriptors(lfw_dir, fit_paths + probe_paths, settings, views=VIEW_INDEX[tta])
    descriptors = run.mode(tta, spec.recipe.normalized)
    real = np.stack([descriptors[p] for p in fit_paths]).astype(np.float32)
    owners = [p.split("/")[1] for p in fit_paths]
    source = hashlib.sha256(
        f"{spec.recipe.key}|{tta}|{settings.detector}|".encode() + "\n".join(fit_paths).encode()
    ).hexdigest()
    cache = base.data_dir / "eval-cache" / f"scale-gaussian-{spec.recipe.key.replace('/', '_')}.npz"
    model = GaussianModel.load(cache, source)
    if model is None:
        model = GaussianModel.fit(real)
        model.save(cache, source)
        print(f"fitted a Gaussian to {len(real)} descriptors; cached in {cache}")
    else:
        print(f"the Gaussian fitted to {len(real)} descriptors, from {cache}")
    rng = np.random.default_rng(seed)
    synthetic = model.sampler(seed + 1)(20_000)
    check: dict[str, Any] = {
        "fit_images": len(real),
        "fit_people": len(fit_people),
        "real": cosine_stats(real, owners, COSINE_PAIRS, rng),
        "synthetic": cosine_stats(synthetic, None, COSINE_PAIRS, rng),
    }
    for label in ("real", "synthetic"):
        s = check[label]
        print(
            f"impostor cosine, {label:9s}: mean {s['mean']:+.4f}, std {s['std']:.4f}, "
            f"99.9th percentile {s['p99_9']:+.4f} ({s['pairs']:,} random pairs)"
        )
    record("impostor_cosine_check", **check)
    probe_list = [
        Probe(
            p,
            descriptors[image_path(p, 1)].astype(np.float32),
            descriptors[image_path(p, 2)].astype(np.float32),
            lfw_dir / image_path(p, 2),
        )
        for p in chosen
    ]
    return RealData(model, probe_list, spec.recipe.key, tta, spec.recipe.dimension, check)


# -- the store -------------------------------------------------------------------------------


def enrollment_id(index: int) -> str:
    """Deterministic, sortable and never starting with a dash (the CLI reads those as options)."""
    return f"s{index:09d}"


@dataclass
class Loaded:
    """What was written: every vector in row order (enrollment ``enrollment_id(i)`` is row i)."""

    vectors: NDArray[np.float32]
    names: list[str | None]
    collection_id: str
    owner_id: str
    secret: str
    rows: int = 0
    load_s: float = 0.0
    probe_rows: dict[str, int] = field(default_factory=dict)  # person -> row


def write_rows(
    database: Database,
    owner_id: str,
    collection_id: str,
    start: int,
    vectors: NDArray[np.float32],
    names: Sequence[str | None],
    recipe: str,
    tta: str,
    revision: int,
) -> None:
    """One batch: enrollments ``start``… with one embedding each, members at ``revision``, in
    one transaction (executemany per table)."""
    from facegate.service.common import utcnow

    now = utcnow()
    ids = [enrollment_id(start + i) for i in range(len(vectors))]
    with database.engine.begin() as connection:
        connection.execute(
            insert(Enrollment),
            [
                {"id": i, "owner_id": owner_id, "name": n, "created": now, "updated": now}
                for i, n in zip(ids, names, strict=True)
            ],
        )
        connection.execute(
            insert(Embedding),
            [
                {
                    "enrollment_id": i,
                    "position": 0,
                    "vector": to_blob(v),
                    "recipe": recipe,
                    "tta": tta,
                    "created": now,
                }
                for i, v in zip(ids, vectors, strict=True)
            ],
        )
        connection.execute(
            insert(CollectionMember),
            [
                {
                    "collection_id": collection_id,
                    "enrollment_id": i,
                    "added": now,
                    "added_revision": revision,
                }
                for i in ids
            ],
        )


def insert_collection(database: Database, owner_id: str, name: str) -> str:
    """A new collection at revision 1, never trained; its id."""
    from facegate.service.common import new_id, utcnow

    collection_id = new_id()
    now = utcnow()
    with database.engine.begin() as connection:
        connection.execute(
            insert(Collection),
            [
                {
                    "id": collection_id,
                    "owner_id": owner_id,
                    "name": name,
                    "unknowns": False,
                    "created": now,
                    "updated": now,
                    "revision": 1,
                    "training": False,
                    "snapshot_version": 0,
                }
            ],
        )
    return collection_id


def load_store(
    settings: Settings, database: Database, size: int, data: RealData, seed: int
) -> Loaded:
    """Key, collection and ``size`` enrollments (the probes' image 1 among them), plus room for
    ``EXTRA`` more in the kept vectors."""

    created = create_key(settings, "scale")
    collection_id = insert_collection(database, created.key_id, f"scale-{size}")
    rng = np.random.default_rng(seed)
    probes = data.probes[: min(len(data.probes), size)]
    rows = rng.choice(size, size=len(probes), replace=False)
    probe_at = {int(r): p for r, p in zip(rows, probes, strict=True)}
    loaded = Loaded(
        vectors=np.empty((size + EXTRA, data.dimension), np.float32),
        names=[None] * (size + EXTRA),
        collection_id=collection_id,
        owner_id=created.key_id,
        secret=created.secret,
        probe_rows={p.person: r for r, p in probe_at.items()},
    )
    draw = data.model.sampler(seed + 2)
    started = time.perf_counter()
    for start in range(0, size, BATCH):
        end = min(size, start + BATCH)
        block = draw(end - start)
        for row in range(start, end):
            if row in probe_at:
                block[row - start] = probe_at[row].enrolled
                loaded.names[row] = probe_at[row].person
        loaded.vectors[start:end] = block
        write_rows(
            database,
            created.key_id,
            collection_id,
            start,
            block,
            loaded.names[start:end],
            data.recipe,
            data.tta,
            1,
        )
    loaded.rows = size
    loaded.load_s = time.perf_counter() - started
    print(
        f"  loaded {size:,} enrollments in {loaded.load_s:.1f} s "
        f"({size / max(loaded.load_s, 1e-9):,.0f} rows/s, {BATCH:,} per executemany)",
        flush=True,
    )
    return loaded


def add_extra(database: Database, loaded: Loaded, data: RealData, seed: int) -> None:
    """``EXTRA`` more enrollments at the next revision, the way an addition records them."""
    block = data.model.sampler(seed + 3)(EXTRA)
    with database.engine.begin() as connection:
        revision = int(
            connection.execute(
                select(Collection.revision).where(Collection.id == loaded.collection_id)
            ).scalar_one()
        )
        connection.execute(
            update(Collection)
            .where(Collection.id == loaded.collection_id)
            .values(revision=revision + 1)
        )
    write_rows(
        database,
        loaded.owner_id,
        loaded.collection_id,
        loaded.rows,
        block,
        [None] * EXTRA,
        data.recipe,
        data.tta,
        revision + 1,
    )
    loaded.vectors[loaded.rows : loaded.rows + EXTRA] = block
    loaded.rows += EXTRA


# -- backends --------------------------------------------------------------------------------


@dataclass
class Store:
    """One backend's fresh store for one size: the settings the servers get."""

    backend: str
    settings: Settings
    env: dict[str, str]
    size_on_disk: Callable[[Database], int]


@contextmanager
def postgres_cluster(root: Path) -> Iterator[Any]:
    """A pgserver cluster (PostgreSQL 16 + pgvector) in ``root``, stopped at the end."""
    # pgserver (through platformdirs) wants a runtime folder and warns without one; the
    # variable is put back afterwards, since the folder goes with ``root``.
    previous = os.environ.get("XDG_RUNTIME_DIR")
    if previous is None:
        # Private, as the XDG spec asks (platformdirs warns about any other mode).
        root.mkdir(parents=True, exist_ok=True)
        (root / "xdg").mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(root / "xdg")
    try:
        from pgserver.postgres_server import get_server

        server = get_server(str(root / "pg"), cleanup_mode="stop")
        try:
            yield server
        finally:
            server.cleanup()
    finally:
        if previous is None:
            os.environ.pop("XDG_RUNTIME_DIR", None)


def sqlite_store(folder: Path) -> Store:
    data_dir = folder / "data"
    settings = Settings(data_dir=data_dir, database_url=None)

    def size(_: Database) -> int:
        # The database, its WAL and shared memory and the index files: everything in the data
        # folder but the model cache.
        return sum(
            p.stat().st_size
            for p in data_dir.rglob("*")
            if p.is_file() and settings.model_cache_dir not in p.parents
        )

    return Store("sqlite", settings, {"FACEGATE_DATA_DIR": str(data_dir)}, size)


def postgres_store(folder: Path, cluster: Any, name: str) -> Store:
    # The socket folder pgserver chose (its data folder, or a shorter one for long paths).
    socket_dir = str(make_url(cluster.get_uri()).query["host"])
    cluster.psql(f"DROP DATABASE IF EXISTS {name};")
    cluster.psql(f"CREATE DATABASE {name};")
    url = f"postgresql+psycopg://postgres:@/{name}?host={socket_dir}"
    data_dir = folder / "data"
    settings = Settings(data_dir=data_dir, database_url=url)

    def size(database: Database) -> int:
        with database.engine.connect() as connection:
            return int(
                connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )

    env = {"FACEGATE_DATA_DIR": str(data_dir), "FACEGATE_DATABASE_URL": url}
    return Store("postgresql", settings, env, size)


def read_store_files(store: Store, database: Database) -> float:
    """Seconds to read once every file of the store (SQLite's database and WAL, or this
    PostgreSQL database's folder) and of the data folder's indexes, so that searches find
    them in the OS cache, as a running service's searches find what they keep reading. This
    machine's cache keeps nothing long: a 2 GB file read in 0.18 s when written took 4.4 s
    twenty minutes later; and PostgreSQL is searched ~17 min after its load (the HNSW build),
    SQLite ~1.5 min after: a search re-read ~30 pages of the members' and enrollments' keys
    from disk, ~0.2 ms each (EXPLAIN (ANALYZE, BUFFERS) with track_io_timing), 2-11 ms."""
    started = time.perf_counter()
    url = make_url(store.settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        files = [Path(url.database + suffix) for suffix in ("", "-wal")]
    else:
        with database.engine.connect() as connection:
            root = connection.execute(text("SHOW data_directory")).scalar_one()
            oid = connection.execute(
                text("SELECT oid FROM pg_database WHERE datname = current_database()")
            ).scalar_one()
        files = list((Path(root) / "base" / str(oid)).iterdir())
    files += list(store.settings.index_dir.rglob("*"))
    for path in files:
        if path.is_file():
            with path.open("rb") as stream:
                while stream.read(1 << 22):
                    pass
    return time.perf_counter() - started


def vacuum_after_load(database: Database) -> float:
    """Seconds to VACUUM the loaded tables, as an operator would after a bulk load. Left to
    autovacuum, its first pass over a million new rows would come whenever it came, perhaps
    while the bench measures: the HNSW build locks the embeddings out of it (its log: 'skipping
    vacuum of "embeddings" --- lock not available' each minute of the build). Statistics are
    left alone: the training's ANALYZE is measured."""
    started = time.perf_counter()
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM embeddings, collection_members, enrollments"))
    return time.perf_counter() - started


def autovacuum_running(database: Database) -> list[str]:
    """What autovacuum's workers are doing in this database now (PostgreSQL; [] on SQLite)."""
    if database.engine.dialect.name != "postgresql":
        return []
    with database.engine.connect() as connection:
        return [
            str(query)
            for query in connection.execute(
                text(
                    "SELECT query FROM pg_stat_activity WHERE backend_type = "
                    "'autovacuum worker' AND datname = current_database()"
                )
            ).scalars()
        ]


def drop_hnsw_indexes(database: Database) -> list[str]:
    """HNSW indexes on the embeddings (before a bulk load: built once afterwards, not per row)."""
    with database.engine.begin() as connection:
        names = [
            str(n)
            for n in connection.execute(
                text(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' "
                    "AND indexdef ILIKE '%hnsw%'"
                )
            ).scalars()
        ]
        for name in names:
            connection.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
    return names


# -- HTTP ------------------------------------------------------------------------------------


def _client(server: ServeProcess, secret: str) -> Any:
    from facegate.client import Client

    # No retries: a refused or slow answer is what is being measured.
    return Client(server.url, secret, timeout=600.0, max_retries=0)


def train_until_ready(client: Any, collection_id: str) -> float:
    """Seconds from ``POST /v1/train`` until the collection's status is ``ready`` (the request
    marks it ``training`` before it returns; a failed job leaves it ``stale``)."""
    started = time.perf_counter()
    client.train(collection_id)
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while True:
        entry = next(c for c in client.collections(enrollments_limit=0) if c.id == collection_id)
        if entry.status == "ready":
            return time.perf_counter() - started
        if entry.status != "training":  # the job failed: its server logged why
            raise RuntimeError(f"training of collection {collection_id} ended {entry.status}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"collection {collection_id} not ready after {TRAIN_TIMEOUT_S} s")
        time.sleep(POLL_S)


def wait_for_ahead(
    servers: Sequence[ServeProcess], timeout_s: float = AHEAD_TIMEOUT_S
) -> dict[str, float]:
    """Wait until a server has prepared the index ahead of training: its seconds, and the
    seconds waited (none when it did not within ``timeout_s``: the training builds it)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        seconds = logged_seconds(servers, "approximate index prepared ahead")
        if seconds is not None:
            waited = time.perf_counter() - started
            print(f"  index prepared ahead in {seconds:.1f} s ({waited:.1f} s after start)")
            return {"ahead_s": seconds, "ahead_wait_s": waited}
        time.sleep(0.5)
    print(f"  no index prepared ahead within {timeout_s:.0f} s", flush=True)
    return {}


def logged_seconds(servers: Sequence[ServeProcess], message: str) -> float | None:
    """The seconds of the last line starting with ``message`` in the servers' JSON logs."""
    found: float | None = None
    for server in servers:
        for line in server.log_path.read_text(errors="replace").splitlines():
            if message not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if str(entry.get("message", "")).startswith(message):
                found = float(entry.get("seconds", 0.0))
    return found


def _status_mb(pid: int, name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {name} in /proc/{pid}/status")


@dataclass
class Timed:
    kind: str
    started: float
    ended: float
    ok: bool


def request_loop(
    client: Any,
    jobs: Sequence[tuple[str, bytes, str]],
    collection_id: str,
    stop: threading.Event,
    out: list[Timed],
) -> None:
    """identify and match, one after the other, until ``stop``; every request timed."""
    i = 0
    while not stop.is_set():
        person_id, jpeg, kind = jobs[i % len(jobs)]
        i += 1
        started = time.perf_counter()
        ok = True
        try:
            if kind == "identify":
                client.identify(jpeg, collection_id)
            else:
                client.match(jpeg, person_id)
        except Exception:  # refusals count as answers; their time is what matters
            ok = False
        out.append(Timed(kind, started, time.perf_counter(), ok))


# -- one size on one backend -----------------------------------------------------------------


def measure(
    store: Store,
    size: int,
    data: RealData,
    seed: int,
    work: Path,
    warm_identifies: int = WARM_IDENTIFIES,
) -> dict[str, Any]:
    from facegate.index.factory import make_gallery
    from facegate.service.ports import TrainedSnapshot
    from facegate.store.snapshot import SnapshotBounds

    label = f"[{size:,} {store.backend}]"
    print(f"{label} loading", flush=True)
    database = Database.from_settings(store.settings)
    row: dict[str, Any] = {"size": size, "backend": store.backend}
    servers: list[ServeProcess] = []
    clients: list[Any] = []
    try:
        gallery = make_gallery(store.settings, database)
        if store.backend == "postgresql":
            dropped = drop_hnsw_indexes(database)
            if dropped:
                print(f"  dropped {dropped} before the load")
        loaded = load_store(store.settings, database, size, data, seed)
        row["load_rows_per_s"] = size / max(loaded.load_s, 1e-9)
        row["load_s"] = loaded.load_s
        if store.backend == "postgresql":
            started = time.perf_counter()
            gallery.open(data.recipe, data.dimension)  # creates the recipe's HNSW index
            row["hnsw_build_s"] = time.perf_counter() - started
            # No ANALYZE here: the training analyses what a bulk load left without statistics
            # (store/db.py refresh_statistics), as it would for an operator.
            row["vacuum_s"] = vacuum_after_load(database)
        settings_env = {"FACEGATE_RATE_LIMIT_PER_MINUTE": "0", **store.env}
        # One after the other: both would run the (no-op) migrations at once otherwise.
        for name in ("server-a", "server-b"):
            servers.append(start_ready(store.settings.data_dir, work / name, settings_env))
        clients = [_client(s, loaded.secret) for s in servers]
        if store.settings.index_ahead_s > 0 and size >= store.settings.exact_search_limit:
            row.update(wait_for_ahead(servers))
        row["train_s"] = train_until_ready(clients[0], loaded.collection_id)
        print(f"  trained in {row['train_s']:.1f} s", flush=True)
        row["index_build_s"] = (
            logged_seconds(servers, "approximate index built")
            or logged_seconds(servers, "approximate index updated")
            or logged_seconds(servers, "approximate index reused")
            or 0.0
        )
        if store.backend == "postgresql":
            # 0 when the training found the statistics fresh (autovacuum got there first).
            row["analyze_s"] = logged_seconds(servers, "table statistics refreshed") or 0.0
        row["db_mb"] = store.size_on_disk(database) / 1e6

        # Direct search in this process, against exact search over the kept vectors.
        with database.reading() as session:
            collection = session.get(Collection, loaded.collection_id)
            assert collection is not None and collection.trained_revision is not None
            snapshot = TrainedSnapshot(
                SnapshotBounds(
                    collection.id,
                    collection.trained_revision,
                    int(collection.trained_watermark or 0),
                    data.recipe,
                ),
                collection.snapshot_version,
                collection.index_name,
                # As identify passes it: pgvector searches a small snapshot exactly.
                size=collection.trained_embeddings,
            )
            # Which kind of search answered: an index file, or exact (SQLite) / HNSW (PostgreSQL).
            row["index_name"] = collection.index_name
        probes = [p for p in data.probes if p.person in loaded.probe_rows]
        queries = np.stack([p.query for p in probes])
        started = time.perf_counter()
        gallery.search(snapshot, data.dimension, queries[:1], 1)  # loads the index
        row["first_search_ms"] = 1000 * (time.perf_counter() - started)
        # k=1 as the store's files come (cold on PostgreSQL: see read_store_files), then warm.
        times, _ = timed_searches(gallery, snapshot, data.dimension, queries, 1)
        row["search_k1_cold_p50_ms"] = percentile_ms(times, 50)
        row["warm_s"] = read_store_files(store, database)
        found: dict[int, list[list[str]]] = {}
        autovacuum = autovacuum_running(database)
        for k in (1, 10):
            times, found[k] = timed_searches(gallery, snapshot, data.dimension, queries, k)
            row[f"search_k{k}_p50_ms"] = percentile_ms(times, 50)
            row[f"search_k{k}_p99_ms"] = percentile_ms(times, 99)
        # What of autovacuum ran as the searches began and ended (PostgreSQL): its pass over a
        # million rows slows every search while it lasts.
        row["autovacuum_during_search"] = sorted({*autovacuum, *autovacuum_running(database)})
        exact = exact_top_k(loaded.vectors[:size], queries, 10)
        exact_labels = [[enrollment_id(int(i)) for i in r] for r in exact]
        row["recall_at_1"] = recall_at(found[1], exact_labels, 1)
        row["recall_at_10"] = recall_at(found[10], exact_labels, 10)
        if store.backend == "postgresql":
            row.update(
                another_machine(
                    store, database, snapshot, queries, exact_labels, work / "machine-2"
                )
            )
        row["rank1_own_direct"] = float(
            np.mean(
                [
                    f[0] == enrollment_id(loaded.probe_rows[p.person])
                    for f, p in zip(found[1], probes, strict=True)
                ]
            )
        )

        # Over HTTP: warm-up spread over both servers, then identify and match on server a.
        jpegs = [(p, p.jpeg.read_bytes()) for p in probes]
        for i in range(warm_identifies):
            _, jpeg = jpegs[i % len(jpegs)]
            try:
                clients[i % 2].identify(jpeg, loaded.collection_id)
            except Exception as exc:  # counted, not fatal: a face the detector misses
                row.setdefault("warm_up_errors", []).append(type(exc).__name__)
        row["rss_mb"] = [_status_mb(s.process.pid, "VmRSS") for s in servers]
        row["hwm_mb"] = [_status_mb(s.process.pid, "VmHWM") for s in servers]
        identify_s, match_s, named = [], [], 0
        for probe, jpeg in jpegs[:HTTP_SAMPLES]:
            own = enrollment_id(loaded.probe_rows[probe.person])
            started = time.perf_counter()
            try:
                answer = clients[0].identify(jpeg, loaded.collection_id)
                identify_s.append(time.perf_counter() - started)
                named += answer.enrollment_id == own
            except Exception as exc:
                row.setdefault("http_errors", []).append(type(exc).__name__)
            started = time.perf_counter()
            try:
                clients[0].match(jpeg, own)
                match_s.append(time.perf_counter() - started)
            except Exception as exc:
                row.setdefault("http_errors", []).append(type(exc).__name__)
        row["identify_p50_ms"] = percentile_ms(identify_s, 50)
        row["match_p50_ms"] = percentile_ms(match_s, 50)
        row["identify_named_own"] = named / max(1, len(identify_s))

        # The incremental case: EXTRA more members, then train again.
        add_extra(database, loaded, data, seed)
        row["retrain_s"] = train_until_ready(clients[0], loaded.collection_id)
        print(f"  retrained after {EXTRA:,} more in {row['retrain_s']:.1f} s", flush=True)

        row.update(deletion_delay(servers, loaded, jpegs))
        # The peak again, now that both retrains (one under load) have run: an update copies
        # the previous index's files, which the first peak, after the first training, need
        # not include.
        row["hwm_end_mb"] = [_status_mb(s.process.pid, "VmHWM") for s in servers]
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()
        database.dispose()
    print(f"{label} done", flush=True)
    return row


def timed_searches(
    gallery: Any, snapshot: Any, dimension: int, queries: NDArray[np.float32], k: int
) -> tuple[list[float], list[list[str]]]:
    """Each query searched alone: the seconds of each, and the labels each answered."""
    times, answers = [], []
    for query in queries:
        started = time.perf_counter()
        hits = gallery.search(snapshot, dimension, query[None, :], k)[0]
        times.append(time.perf_counter() - started)
        answers.append([h.label for h in hits])
    return times, answers


def another_machine(
    store: Store,
    database: Database,
    snapshot: Any,
    queries: NDArray[np.float32],
    exact_labels: list[list[str]],
    data_dir: Path,
) -> dict[str, Any]:
    """PostgreSQL: what a machine without the snapshot's index folder meets — pgvector alone
    (its k=1 search p50 and recall@1 here) — and how long it takes to build its own folder from
    the database (from its first search until the background build is done)."""
    from facegate.index.pgvector import PgvectorGallery
    from facegate.index.postgres import PostgresGallery

    dimension = queries.shape[1]
    pgvector = PgvectorGallery(database)
    times, answers = [], []
    for query in queries:
        started = time.perf_counter()
        hits = pgvector.search(snapshot, dimension, query[None, :], 1)[0]
        times.append(time.perf_counter() - started)
        answers.append([h.label for h in hits])
    row: dict[str, Any] = {
        "pgvector_k1_p50_ms": percentile_ms(times, 50),
        "pgvector_k1_p99_ms": percentile_ms(times, 99),
        "pgvector_recall_at_1": recall_at(answers, exact_labels, 1),
    }
    if snapshot.index is None:
        return row  # searched exactly in process: nothing to build
    settings = store.settings.model_copy(update={"data_dir": data_dir})
    other = PostgresGallery(database, settings)
    try:
        started = time.perf_counter()
        other.search(snapshot, dimension, queries[:1], 1)
        if not other.wait_for_catch_up(TRAIN_TIMEOUT_S):
            raise RuntimeError("the other machine's index was not built in time")
        row["catch_up_s"] = time.perf_counter() - started
        row["catch_up_built"] = (settings.index_dir / snapshot.index).is_dir()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return row


def deletion_delay(
    servers: Sequence[ServeProcess], loaded: Loaded, jpegs: Sequence[tuple[Probe, bytes]]
) -> dict[str, Any]:
    """Latency of requests before a deletion, after it, and around the retrain that follows."""
    jobs = [
        (enrollment_id(loaded.probe_rows[p.person]), jpeg, kind)
        for p, jpeg in jpegs[:HTTP_SAMPLES]
        for kind in ("identify", "match")
    ]
    stop = threading.Event()
    results: list[list[Timed]] = [[] for _ in range(CLIENTS)]
    clients = [_client(servers[i % len(servers)], loaded.secret) for i in range(CLIENTS)]
    threads = [
        threading.Thread(
            target=request_loop,
            args=(clients[i], jobs[i:] + jobs[:i], loaded.collection_id, stop, results[i]),
            daemon=True,
        )
        for i in range(CLIENTS)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        time.sleep(DELETION_WINDOW_S)
        # A synthetic member (row 0 unless a probe is there): the big collection loses one.
        victim = next(i for i in range(loaded.rows) if loaded.names[i] is None)
        with _client(servers[0], loaded.secret) as admin:
            deleted_at = time.perf_counter()
            admin.delete_enrollment(enrollment_id(victim))
            delete_s = time.perf_counter() - deleted_at
            time.sleep(max(0.0, deleted_at + DELETION_WINDOW_S - time.perf_counter()))
            retrain_at = time.perf_counter()
            retrain_s = train_until_ready(admin, loaded.collection_id)
        time.sleep(DELETION_WINDOW_S)
        ended = time.perf_counter()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=600)
        for client in clients:
            client.close()
    timed = [t for r in results for t in r]
    windows = {
        "before_delete": (started, deleted_at),
        "after_delete": (deleted_at, retrain_at),
        "around_retrain": (retrain_at, ended),
    }
    row: dict[str, Any] = {
        "delete_request_ms": 1000 * delete_s,
        "retrain_after_delete_s": retrain_s,
        "failed_requests_around_delete": sum(not t.ok for t in timed),
    }
    for name, (begin, end) in windows.items():
        # A request belongs to each window it was in flight during.
        seconds = [t.ended - t.started for t in timed if t.ended >= begin and t.started < end]
        row[f"requests_{name}"] = len(seconds)
        row[f"p99_{name}_ms"] = percentile_ms(seconds, 99)
        row[f"worst_{name}_ms"] = 1000 * max(seconds) if seconds else float("nan")
    return row


# -- the command -----------------------------------------------------------------------------


def run_scale_bench(
    data_dir: Path,
    *,
    sizes: Sequence[int] = DEFAULT_SIZES,
    backends: Sequence[str] = BACKENDS,
    probes: int = PROBES,
    seed: int = 10,
    work: Path | None = None,
    warm_identifies: int = WARM_IDENTIFIES,
) -> list[dict[str, Any]]:
    """Every size on every backend; prints the table and records each row (eval/report.py)."""
    data = real_data(data_dir, probes, seed)
    print(
        f"facegate bench scale: sizes {list(sizes)}, backends {list(backends)}, "
        f"{len(data.probes)} real probes, recipe {data.recipe} (tta {data.tta}), seed {seed}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    root = Path(tempfile.mkdtemp(prefix="facegate-scale-", dir=work))
    try:
        cluster_context = postgres_cluster(root) if "postgresql" in backends else None
        cluster = cluster_context.__enter__() if cluster_context is not None else None
        try:
            for size in sizes:
                for backend in backends:
                    folder = root / f"{backend}-{size}"
                    folder.mkdir()
                    store = (
                        sqlite_store(folder)
                        if backend == "sqlite"
                        else postgres_store(folder, cluster, f"scale_{size}")
                    )
                    row = measure(store, size, data, seed, folder, warm_identifies)
                    if cluster is not None and backend == "postgresql":
                        cluster.psql(f"DROP DATABASE IF EXISTS scale_{size};")
                    rows.append(row)
                    record("scale", **row)
                    # The next size needs the disk: a 10^6 store is gigabytes.
                    shutil.rmtree(folder, ignore_errors=True)
                    print(format_table(rows), flush=True)
        finally:
            if cluster_context is not None:
                cluster_context.__exit__(None, None, None)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(format_table(rows))
    return rows
