"""``facegate bench scale`` end to end at tiny sizes: both backends, the JSON report complete.

Needs LFW (the Gaussian fit and the probes) at ``../shared/facedata`` beside the checkout, as
the other LFW benchmarks do; PostgreSQL comes from the pgserver package.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from facegate.cli import main
from facegate.eval.scale_bench import COLUMNS

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "facedata"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (DATA / "lfw" / "people_counts.csv").is_file(), reason=f"no LFW at {DATA}"
    ),
]

SIZES = (500, 3000)
BACKENDS = ("sqlite", "postgresql")
# Figures of PostgreSQL only: its HNSW index, the VACUUM after the load, the statistics the
# training refreshed, and what a machine without the index folder meets.
POSTGRES_ONLY = {
    "hnsw_build_s",
    "vacuum_s",
    "analyze_s",
    "pgvector_k1_p50_ms",
    "pgvector_recall_at_1",
    "catch_up_s",
}


def test_bench_scale_reports_every_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The servers and the bench read it: 3,000 goes through the approximate index on SQLite.
    monkeypatch.setenv("FACEGATE_EXACT_SEARCH_LIMIT", "1000")
    out = tmp_path / "scale.json"
    code = main(
        [
            "bench",
            "scale",
            str(DATA),
            "--sizes",
            ",".join(map(str, SIZES)),
            "--backends",
            ",".join(BACKENDS),
            "--probes",
            "10",
            "--warm-identifies",
            "20",
            "--out",
            str(out),
            "--work",
            str(tmp_path),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    check = next(f for f in report["figures"] if f["section"] == "impostor_cosine_check")
    for label in ("real", "synthetic"):
        assert -1 <= check[label]["mean"] <= 1 and check[label]["std"] > 0
    rows = [f for f in report["figures"] if f["section"] == "scale"]
    assert [(r["size"], r["backend"]) for r in rows] == [(s, b) for s in SIZES for b in BACKENDS]
    for row in rows:
        indexed = row["size"] > 1000
        expected = {key for key, _, _ in COLUMNS}
        if not indexed:
            expected -= {"ahead_s", "ahead_wait_s"}  # nothing to prepare ahead
        if row["backend"] == "sqlite":
            expected -= POSTGRES_ONLY
        elif not indexed:
            expected.remove("catch_up_s")  # searched exactly in process: nothing to build
        missing = [key for key in expected if row.get(key) is None]
        assert not missing, (row["size"], row["backend"], missing)
        assert (row["index_name"] is not None) is indexed, row["index_name"]
        for key in ("recall_at_1", "recall_at_10"):
            assert 0.0 <= row[key] <= 1.0
        assert row["search_k1_p50_ms"] > 0 and row["search_k10_p50_ms"] > 0
        assert len(row["rss_mb"]) == 2 and all(mb > 0 for mb in row["rss_mb"])
        # A peak never falls: the one read at the end is at least the one read before.
        assert all(end >= peak for end, peak in zip(row["hwm_end_mb"], row["hwm_mb"], strict=True))
        assert row["db_mb"] > 0 and row["train_s"] > 0 and row["retrain_s"] > 0
        for window in ("before_delete", "after_delete", "around_retrain"):
            assert row[f"requests_{window}"] > 0, window
        assert row["retrain_after_delete_s"] > 0
        assert all(math.isfinite(row[k]) for k in ("identify_p50_ms", "match_p50_ms"))
        # The probes are real people among synthetic impostors: found by their own image 1.
        assert row["rank1_own_direct"] >= 0.7
        assert isinstance(row["autovacuum_during_search"], list)
        assert row["search_k1_cold_p50_ms"] > 0 and row["warm_s"] >= 0
        if row["backend"] == "postgresql":
            assert 0.0 <= row["pgvector_recall_at_1"] <= 1.0
            assert row.get("catch_up_built", False) is indexed
