"""A search's re-read on PostgreSQL, planned for each execution's values or once.

    .venv/bin/python tools/plan_cache_ab.py [--size N] [--rounds R] [--reads M] [--folder DIR]

Starts a pgserver cluster in DIR (a new temporary folder by default), writes N enrollments of one
random unit vector each into one collection through the project's schema, then times the
statement a search re-reads its candidates with (index/reads.py ``PostgresReads.candidates``,
the product's own code, ``MIN_CANDIDATES`` random embedding ids a read) on two read
connections like the product's (autocommit, binary cursor): one with PostgreSQL's default
``plan_cache_mode = auto``, one with ``force_generic_plan`` as ``Database.read_raw`` has it.
Each round reads M times on each, in alternating order, with the same ids; prints each round's
p50 per mode, their ratio, and the medians over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from facegate.config import Settings
from facegate.eval.scale_bench import (
    insert_collection,
    postgres_cluster,
    postgres_store,
    write_rows,
)
from facegate.index.gallery import MIN_CANDIDATES
from facegate.index.reads import PostgresReads
from facegate.service.keys import create_key
from facegate.store.db import Database
from facegate.store.models import Embedding

DIMENSION = 128
BATCH = 10_000
MODES = ("auto", "force_generic_plan")


def load(settings: Settings, database: Database, size: int) -> str:
    """A new collection of ``size`` enrollments; its id."""
    owner = create_key(settings, "plans").key_id
    collection_id = insert_collection(database, owner, "plans")
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, size, BATCH):
        vectors = rng.standard_normal((min(BATCH, size - start), DIMENSION), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        names = [None] * len(vectors)
        write_rows(database, owner, collection_id, start, vectors, names, "plans", "none", 1)
    database.refresh_statistics()
    print(f"loaded {size:,} enrollments in {time.perf_counter() - started:.0f} s", flush=True)
    return collection_id


def reader(conninfo: str, mode: str) -> Any:
    connection = psycopg.connect(conninfo, autocommit=True, options=f"-c plan_cache_mode={mode}")
    return connection.cursor(binary=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--folder", type=Path, default=None)
    args = parser.parse_args()
    root = args.folder or Path(tempfile.mkdtemp(prefix="facegate-plans-"))
    with postgres_cluster(root) as cluster:
        store = postgres_store(root, cluster, "plans")
        database = Database.from_settings(store.settings)
        try:
            collection_id = load(store.settings, database, args.size)
            product_mode = database.read_raw(_plan_cache_mode)
            with database.engine.connect() as connection:
                ids = np.array(connection.execute(select(Embedding.id)).scalars().all())
        finally:
            database.dispose()
        print(f"Database.read_raw's plan_cache_mode: {product_mode}")
        url = make_url(store.settings.sqlalchemy_url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        cursors = {mode: reader(conninfo, mode) for mode in MODES}
        reads = PostgresReads()
        rng = np.random.default_rng(1)
        medians: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_number in range(1, args.rounds + 1):
            seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
            for read in range(args.reads):
                wanted = [int(i) for i in rng.choice(ids, MIN_CANDIDATES, replace=False)]
                order = MODES if read % 2 == 0 else MODES[::-1]
                for mode in order:
                    started = time.perf_counter()
                    found = reads.candidates(cursors[mode], wanted, collection_id, DIMENSION)
                    seconds[mode].append(time.perf_counter() - started)
                    assert len(found.labels) == MIN_CANDIDATES
            p50 = {mode: 1000 * statistics.median(seconds[mode]) for mode in MODES}
            for mode in MODES:
                medians[mode].append(p50[mode])
            print(
                f"round {round_number}: auto {p50['auto']:.3f} ms, generic "
                f"{p50['force_generic_plan']:.3f} ms "
                f"({p50['auto'] / p50['force_generic_plan']:.2f}x)",
                flush=True,
            )
        for cursor in cursors.values():
            cursor.connection.close()
        auto, generic = (statistics.median(medians[mode]) for mode in MODES)
        print(
            f"median of {args.rounds} rounds' p50: auto {auto:.3f} ms, generic "
            f"{generic:.3f} ms ({auto / generic:.2f}x) at {args.size:,} enrollments"
        )


def _plan_cache_mode(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return str(cursor.fetchone()[0])


if __name__ == "__main__":
    main()
