"""Which approximate index for the in-process gallery, on the data the scale bench uses.

    .venv/bin/python tools/ann_choice.py ../shared/facedata [--size N] [--probes P]
    .venv/bin/python tools/ann_choice.py ../shared/facedata --lists 512,2048 \
        --shares 0.5,0.7 [--dev-probes]

(P: at most every LFW person with two images outside DevTrain, 735; the default takes them all.
``--lists``: how many lists the fast-scan index should have (``ann.LISTS``): index/ann.py's
index (one list, every code scanned) against IVF indexes of each list count, their partition
trained by k-means as an earlier release did (``PARTITION_TRAINING``), each searched visiting
each share of its lists, all timed round by round in turn (``ROUNDS``: this machine is
shared); ``--dev-probes`` takes the probes from DevTrain instead (945), the split that choice
is made on.)

Gallery: N unit vectors from eval/scale_bench.py's Gaussian (fitted to real SFace descriptors of
LFW DevTrain people, cached in the data folder), with the real descriptors of P people outside
DevTrain (their image 1) placed among them; probes: the same people's image 2. For each
candidate: build time (every core), bytes per vector, search time per probe on one thread, and
the share of probes whose exact nearest neighbour comes first (after the candidate's own
re-ranking: the gallery then re-ranks exactly, so that is what it can recover).

Candidates: faiss IVF with 8-bit scalar codes; faiss IVF with fast-scan PQ codes and a float16
re-rank, as index/ann.py builds it (what the gallery uses); faiss HNSW (32 links) over float32.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
from numpy.typing import NDArray

from facegate.eval.scale_bench import PROBES, exact_top_k, real_data
from facegate.index import ann

Search = Callable[[NDArray[np.float32]], int]  # a probe -> the row it ranks first


# A partition's k-means: vectors per list and iterations, as index/ann.py trained one when it
# had 2,048 lists (faiss asks for 39 vectors per list at least).
PARTITION_TRAINING = (40, 10)
ROUNDS = 5
SQ8_LISTS, SQ8_SHARE = 2_048, 0.5


def ivf_sq8(gallery: NDArray[np.float32]) -> tuple[Search, int]:
    index = faiss.index_factory(gallery.shape[1], f"IVF{SQ8_LISTS},SQ8")
    index.train(gallery[:: max(1, len(gallery) // (64 * SQ8_LISTS))])
    index.add(gallery)
    index.nprobe = round(SQ8_LISTS * SQ8_SHARE)
    return (lambda q: int(index.search(q[None, :], 1)[1][0][0])), index.sa_code_size()


def ann_built(gallery: NDArray[np.float32]) -> tuple[ann.AnnIndex, Path]:
    """index/ann.py's index of ``gallery``, built as the gallery builds it, and its folder."""
    folder = Path(tempfile.mkdtemp()) / "index"
    rows = np.arange(len(gallery), dtype=np.int64)
    training = gallery[ann.training_rows(len(gallery))]
    ann.build(folder, gallery.shape[1], [(rows, rows, gallery)], len(gallery), {}, training)
    return ann.load(folder), folder


def ivf_fast_scan(gallery: NDArray[np.float32]) -> tuple[Search, int]:
    index, folder = ann_built(gallery)
    size = (folder / ann.INDEX_FILE).stat().st_size // len(gallery) + 2 * gallery.shape[1]
    return (lambda q: int(index.candidates(q, 1)[0])), size


def hnsw(gallery: NDArray[np.float32]) -> tuple[Search, int]:
    index = faiss.IndexHNSWFlat(gallery.shape[1], 32)
    index.hnsw.efConstruction = 64
    index.add(gallery)
    index.hnsw.efSearch = 256
    return (lambda q: int(index.search(q[None, :], 1)[1][0][0])), 4 * gallery.shape[1] + 256


def partitioned(gallery: NDArray[np.float32], lists: int) -> faiss.Index:
    """A fast-scan index like index/ann.py's but of ``lists`` lists trained by k-means."""
    dimension = gallery.shape[1]
    index = faiss.index_factory(dimension, f"IVF{lists},PQ{dimension // 2}x4fs")
    ivf = faiss.extract_index_ivf(index)
    ivf.by_residual = False
    per_list, ivf.cp.niter = PARTITION_TRAINING
    index.train(gallery[np.linspace(0, len(gallery) - 1, per_list * lists).astype(np.int64)])
    index.add(gallery)
    return index


def reranked(index: faiss.Index, gallery: NDArray[np.float32], visited: int) -> Search:
    """The first candidate after an exact re-rank of ``ann.CANDIDATES``, visiting ``visited``
    lists (the gallery's re-rank is by float16 vectors, then exact)."""
    params = faiss.SearchParametersIVF()
    params.nprobe = visited

    def search(query: NDArray[np.float32]) -> int:
        _, found = index.search(query[None, :], ann.CANDIDATES, params=params)
        rows = found[0][found[0] >= 0]
        return int(rows[np.argmin(((gallery[rows] - query) ** 2).sum(axis=1))])

    return search


def partition_sweep(
    gallery: NDArray[np.float32],
    queries: NDArray[np.float32],
    truth: NDArray[np.int64],
    lists: list[int],
    shares: list[float],
) -> None:
    searches: dict[str, Search] = {}
    builds: dict[str, float] = {}
    for count in lists:
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        started = time.perf_counter()
        ours = count == ann.LISTS
        index = ann_built(gallery)[0].index if ours else partitioned(gallery, count)
        built = time.perf_counter() - started
        for share in [1.0] if ours else shares:
            label = f"{count} ({share:.0%})"
            searches[label] = reranked(index, gallery, max(1, round(share * count)))
            builds[label] = built
    faiss.omp_set_num_threads(1)
    times: dict[str, list[float]] = {label: [] for label in searches}
    hits: dict[str, int] = {}
    for _ in range(ROUNDS):
        for label, search in searches.items():
            ms, hits[label] = timed(search, queries, truth)
            times[label].append(float(np.median(ms)))
    print("| lists (visited) | build s | search p50 ms, per round | true nearest first |")
    print("|---|---:|---:|---:|")
    for label, rounds in times.items():
        per_round = " ".join(f"{t:.2f}" for t in rounds)
        print(
            f"| {label} | {builds[label]:.1f} | {np.median(rounds):.2f} ({per_round}) | "
            f"{hits[label] / len(queries):.4f} |"
        )


def timed(
    search: Search, queries: NDArray[np.float32], truth: NDArray[np.int64]
) -> tuple[NDArray[np.float64], int]:
    """Each probe's search time in ms, and how many found their exact nearest first."""
    times, hits = [], 0
    for query, nearest in zip(queries, truth, strict=True):
        started = time.perf_counter()
        hits += search(query) == nearest
        times.append(time.perf_counter() - started)
    return np.asarray(times) * 1000, hits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=PROBES)
    parser.add_argument("--skip-hnsw", action="store_true", help="its build takes long at 10^6")
    parser.add_argument("--lists", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--shares", type=lambda v: [float(x) for x in v.split(",")], default=[0.5])
    parser.add_argument("--dev-probes", action="store_true")
    args = parser.parse_args()
    data = real_data(args.data, args.probes, seed=0, dev_probes=args.dev_probes)
    gallery = data.model.sampler(1)(args.size)
    at = np.random.default_rng(5).choice(args.size, len(data.probes), replace=False)
    gallery[at] = np.stack([p.enrolled for p in data.probes])
    queries = np.stack([p.query for p in data.probes])
    truth = exact_top_k(gallery, queries, 1)[:, 0]  # the bench's exact search, by blocks
    split = "DevTrain" if args.dev_probes else "outside DevTrain"
    print(f"{args.size:,} vectors, {len(queries)} real probes ({split})")
    if args.lists:
        partition_sweep(gallery, queries, truth, args.lists, args.shares)
        return
    print("| index | build s | bytes/vector | search p50 ms | p99 ms | true nearest first |")
    print("|---|---:|---:|---:|---:|---:|")
    candidates = {
        "faiss IVF, SQ8": ivf_sq8,
        "faiss IVF, PQ fast scan + f16 (ann.py)": ivf_fast_scan,
    }
    if not args.skip_hnsw:
        candidates["faiss HNSW32, float32"] = hnsw
    for label, make in candidates.items():
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        started = time.perf_counter()
        search, size = make(gallery)
        build = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        ms, hits = timed(search, queries, truth)
        print(
            f"| {label} | {build:.1f} | {size} | {np.median(ms):.2f} | "
            f"{np.percentile(ms, 99):.2f} | {hits / len(queries):.3f} |"
        )


if __name__ == "__main__":
    main()
