"""Which approximate index for the in-process gallery: usearch (int8, float16) against hnswlib.

    .venv/bin/python tools/ann_choice.py [N] [--queries Q]

Unit vectors drawn from an anisotropic Gaussian (per-dimension scales 2.0 to 0.3, like face
descriptors whose variance concentrates on some directions), queries = stored vectors plus
noise. For each candidate: build time (2 threads), saved size, search time per query, and the
share of queries whose exact nearest neighbour is among the 64 candidates the gallery takes
(what its exact re-ranking can recover), and of their exact 10 nearest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import hnswlib
import numpy as np
from usearch.index import Index

CANDIDATES = 64


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=200_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    dim = 128
    scales = np.linspace(2.0, 0.3, dim).astype(np.float32)
    vectors = rng.standard_normal((args.n, dim)).astype(np.float32) * scales
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    picked = vectors[rng.choice(args.n, args.queries, replace=False)]
    queries = picked + 0.05 * rng.standard_normal(picked.shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    print(f"{args.n:,} vectors of {dim} dimensions, {args.queries} queries")
    print(
        f"{'index':<28}{'build s':>9}{'file MB':>9}{'search ms':>11}{'top1@64':>9}{'top10@64':>10}"
    )
    folder = Path(tempfile.mkdtemp())
    for dtype, metric in (("i8", "cos"), ("f16", "l2sq")):
        index = Index(
            ndim=dim,
            metric=metric,
            dtype=dtype,
            connectivity=16,
            expansion_add=64,
            expansion_search=128,
        )
        started = time.perf_counter()
        index.add(np.arange(args.n, dtype=np.uint64), vectors, threads=2)
        build = time.perf_counter() - started
        path = folder / f"{dtype}.usearch"
        index.save(str(path))
        view = Index.restore(str(path), True, expansion_search=128)
        assert view is not None
        started = time.perf_counter()
        keys = np.stack([view.search(q, CANDIDATES, threads=1).keys for q in queries])
        search = (time.perf_counter() - started) / len(queries)
        _row(f"usearch {dtype} {metric}", build, path.stat().st_size, search, keys, exact)
    graph = hnswlib.Index(space="l2", dim=dim)
    graph.init_index(max_elements=args.n, ef_construction=64, M=16)
    started = time.perf_counter()
    graph.add_items(vectors, np.arange(args.n), num_threads=2)
    build = time.perf_counter() - started
    graph.set_ef(128)
    path = folder / "hnswlib.bin"
    graph.save_index(str(path))
    started = time.perf_counter()
    keys = np.stack([graph.knn_query(q, CANDIDATES, num_threads=1)[0][0] for q in queries])
    search = (time.perf_counter() - started) / len(queries)
    _row("hnswlib float32 l2", build, path.stat().st_size, search, keys, exact)
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()


def _row(
    name: str, build: float, size: int, search: float, keys: np.ndarray, exact: np.ndarray
) -> None:
    top1 = np.mean([exact[i, 0] in set(keys[i]) for i in range(len(exact))])
    top10 = np.mean([len(set(exact[i]) & set(keys[i])) / 10 for i in range(len(exact))])
    print(
        f"{name:<28}{build:>9.1f}{size / 1e6:>9.1f}{search * 1000:>11.3f}{top1:>9.3f}{top10:>10.3f}"
    )


if __name__ == "__main__":
    main()
