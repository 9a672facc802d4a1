"""How long a search waits while a training updates a large index in the same process.

    .venv/bin/python tools/update_stall.py [--size N] [--updates U] [--folder DIR]

Builds (once, in DIR) an index of N random unit vectors of 128 dimensions with index/ann.py,
then searches it from one thread in a loop (one probe, 8 candidates, 2 ms apart: a request
thread) while another thread, at the training's lowered priority, writes U updates of it that
remove three rows (each copies the arrays, edits the faiss index, writes and fsyncs a new
folder). Prints each update's seconds and the searches' latency before and during the updates:
a search that waits for the update is one that holds the GIL or the CPU from the others.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from facegate.index import ann
from facegate.priority import lower_priority

DIMENSION = 128
CHUNK = 50_000


def build(folder: Path, size: int) -> None:
    rng = np.random.default_rng(0)

    def batches() -> ann.Batches:
        for start in range(0, size, CHUNK):
            rows = min(CHUNK, size - start)
            vectors = rng.standard_normal((rows, DIMENSION), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            ids = np.arange(start, start + rows, dtype=np.int64)
            yield ids, ids, vectors

    # Trained on vectors drawn like the rows (the gallery reads a sample of its rows).
    training = rng.standard_normal((len(ann.training_rows(size)), DIMENSION), dtype=np.float32)
    training /= np.linalg.norm(training, axis=1, keepdims=True)
    started = time.perf_counter()
    ann.build(folder, DIMENSION, batches(), size, {"revision": 1}, training)
    print(f"built {size:,} rows in {time.perf_counter() - started:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=None, help="kept between runs")
    args = parser.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="facegate-stall-"))
    base = root / "base"
    if not (base / ann.INDEX_FILE).is_file():
        build(base, args.size)
    view = ann.load(base)
    probes = view.vectors[:: max(1, args.size // 400)].astype(np.float32)
    latencies: list[tuple[float, float]] = []
    stop = threading.Event()

    def search() -> None:
        for turn in itertools.count():
            if stop.is_set():
                return
            started = time.perf_counter()
            view.candidates(probes[turn % len(probes)], 8)
            latencies.append((started, time.perf_counter() - started))
            time.sleep(0.002)

    spans: list[tuple[float, float]] = []

    def update() -> None:
        lower_priority()
        for turn in range(args.updates):
            out = root / f"update-{turn}"
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            removed = np.array([5, 77, 1234], dtype=np.int64)
            ann.update(ann.load(base), out, removed, iter(()), 0, {"revision": 2})
            spans.append((started, time.perf_counter()))
            shutil.rmtree(out)
            time.sleep(2)

    searcher = threading.Thread(target=search)
    searcher.start()
    time.sleep(3)
    updater = threading.Thread(target=update)
    updater.start()
    updater.join()
    stop.set()
    searcher.join()
    before = [s for at, s in latencies if at < spans[0][0]]
    during = [s for at, s in latencies if any(a <= at + s and at <= b for a, b in spans)]
    print("updates s:", ", ".join(f"{b - a:.2f}" for a, b in spans))
    for label, seconds in (("before", before), ("during", during)):
        ms = 1000 * np.asarray(seconds)
        print(
            f"searches {label} the updates: {len(ms)}, p50 {np.median(ms):.1f} ms, "
            f"p99 {np.percentile(ms, 99):.1f} ms, worst {ms.max():.1f} ms"
        )
    if args.folder is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
