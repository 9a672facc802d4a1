"""How much resident memory building and updating a large index costs the process doing it.

    .venv/bin/python tools/index_memory.py [--size N] [--changes C] [--rounds R]

Each round, in a fresh child process each: builds an index of N random unit vectors of 128
dimensions with index/ann.py (fed in chunks as the gallery feeds it from the store), then
updates it with C rows removed and C added. Prints each step's seconds and how far the
process's peak resident memory (VmHWM, reset just before the step) rose above its resident
memory as the step began: what a server that prepares or trains an index peaks at above what
it held before. Run it with ``PYTHONPATH=OTHER_CHECKOUT/src`` to measure another version of
the index the same way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facegate.index import ann

DIMENSION = 128
CHUNK = 50_000


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _unit_vectors(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, DIMENSION), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _batches(first: int, count: int, seed: int) -> ann.Batches:
    rng = np.random.default_rng(seed)
    for start in range(first, first + count, CHUNK):
        rows = min(CHUNK, first + count - start)
        ids = np.arange(start, start + rows, dtype=np.int64)
        yield ids, ids, _unit_vectors(rng, rows)


def step(kind: str, folder: Path, size: int, changes: int) -> dict[str, float]:
    """One build or update, in this process: its seconds and peak memory rise."""
    if kind == "update":
        previous = ann.load(folder / "base")
        previous.held_keys()  # as the gallery reads them first, before the step
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+).
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    if kind == "build":
        # Trained on vectors drawn like the rows (the gallery reads a sample of its rows).
        training = _unit_vectors(np.random.default_rng(2), len(ann.training_rows(size)))
        batches = _batches(0, size, 0)
        ann.build(folder / "base", DIMENSION, batches, size, {"revision": 1}, training)
    else:
        removed = np.arange(0, size, max(1, size // changes), dtype=np.int64)[:changes]
        batches = _batches(size, changes, 1)
        ann.update(previous, folder / "updated", removed, batches, changes, {"revision": 2})
    seconds = time.perf_counter() - started
    rise = _status_mb("VmHWM") - before
    return {"seconds": seconds, "rss_before_mb": before, "peak_rise_mb": rise}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step", choices=("build", "update"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child: one step, its figures as JSON
        print(json.dumps(step(args.step, args.folder, args.size, args.changes)))
        return
    print(f"index/ann.py from {ann.__file__}; {args.size:,} rows, {args.changes:,} changed")
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="facegate-index-memory-") as folder:
            for kind in ("build", "update"):
                command = [sys.executable, __file__, "--step", kind, "--folder", folder]
                command += ["--size", str(args.size), "--changes", str(args.changes)]
                # This script itself, with arguments it makes.
                out = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
                figures = json.loads(out.stdout.splitlines()[-1])
                print(
                    f"round {round_} {kind:>6}: {figures['seconds']:5.1f} s, peak "
                    f"{figures['peak_rise_mb']:6.1f} MB above the "
                    f"{figures['rss_before_mb']:.0f} MB resident before",
                    flush=True,
                )


if __name__ == "__main__":
    main()
