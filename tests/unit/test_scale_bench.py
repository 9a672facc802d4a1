"""The parts of ``facegate bench scale`` that need no server: the synthetic descriptors, exact
search, recall, the table and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facegate.cli import build_parser
from facegate.eval.scale_bench import (
    COLUMNS,
    GaussianModel,
    cosine_stats,
    enrollment_id,
    exact_top_k,
    format_table,
    percentile_ms,
    recall_at,
)


def _unit_cloud(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around a common direction, like face descriptors (positive mean cosine)."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, dim)) * np.linspace(0.5, 2.0, dim) + 0.8
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_samples_are_unit_vectors_with_the_real_cosine_distribution() -> None:
    real = _unit_cloud(4000, 32, 1)
    model = GaussianModel.fit(real)
    synthetic = model.sampler(2)(20_000)
    assert synthetic.dtype == np.float32 and synthetic.shape == (20_000, 32)
    assert np.allclose(np.linalg.norm(synthetic, axis=1), 1.0, atol=1e-5)
    rng = np.random.default_rng(3)
    want = cosine_stats(real, None, 50_000, rng)
    got = cosine_stats(synthetic, None, 50_000, rng)
    assert abs(got["mean"] - want["mean"]) < 0.02
    assert abs(got["std"] - want["std"]) < 0.02
    assert abs(got["p99_9"] - want["p99_9"]) < 0.05


def test_one_seed_one_stream() -> None:
    model = GaussianModel.fit(_unit_cloud(500, 8, 1))
    first, second = model.sampler(5), model.sampler(5)
    assert np.array_equal(np.vstack([first(10), first(10)]), second(20))


def test_cosine_stats_pair_only_distinct_owners() -> None:
    # Two owners, each with identical vectors: pairs within an owner would have cosine 1.
    vectors = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    stats = cosine_stats(vectors, ["a", "a", "b", "b"], 1000, np.random.default_rng(0))
    assert stats["pairs"] > 0
    assert stats["mean"] == pytest.approx(0.0) and stats["p99_9"] == pytest.approx(0.0)


def test_the_fit_is_cached_with_what_it_was_made_from(tmp_path: Path) -> None:
    model = GaussianModel.fit(_unit_cloud(300, 8, 1))
    path = tmp_path / "cache" / "fit.npz"
    model.save(path, "source-1")
    loaded = GaussianModel.load(path, "source-1")
    assert loaded is not None and np.array_equal(loaded.covariance, model.covariance)
    assert GaussianModel.load(path, "other images") is None
    assert GaussianModel.load(tmp_path / "absent.npz", "source-1") is None


def test_exact_top_k_in_blocks_equals_one_sort() -> None:
    gallery = _unit_cloud(1037, 16, 4)
    queries = _unit_cloud(7, 16, 5)
    found = exact_top_k(gallery, queries, 10, chunk=100)
    distances = np.linalg.norm(queries[:, None, :] - gallery[None, :, :], axis=2)
    assert np.array_equal(found, np.argsort(distances, axis=1, kind="stable")[:, :10])
    assert exact_top_k(gallery[:3], queries, 10).shape == (7, 3)


def test_recall_counts_the_exact_neighbours_found() -> None:
    exact = [["a", "b", "c"], ["d", "e", "f"]]
    assert recall_at([["a", "x", "c"], ["d", "e", "f"]], exact, 3) == pytest.approx(5 / 6)
    assert recall_at([["b"], ["d"]], exact, 1) == pytest.approx(0.5)
    # Order within the first k does not matter; what lies beyond k does not count.
    assert recall_at([["c", "b", "a", "z"], ["f", "e", "z", "d"]], exact, 3) == pytest.approx(5 / 6)
    assert np.isnan(recall_at([], [], 1))


def test_percentiles_in_ms() -> None:
    assert percentile_ms([0.001, 0.002, 0.003], 50) == pytest.approx(2.0)
    assert np.isnan(percentile_ms([], 50))


def test_ids_sort_and_never_start_with_a_dash() -> None:
    ids = [enrollment_id(i) for i in (0, 9, 10, 999_999)]
    assert ids == sorted(ids) and not any(i.startswith("-") for i in ids)


def test_table_has_a_column_per_figure_and_dashes_for_missing_ones() -> None:
    row = {key: 1.5 for key, _, _ in COLUMNS}
    row.update(size=1_000_000, backend="sqlite", rss_mb=[812.4, 640.0], hwm_mb=[900.0, 700.0])
    row.update(hwm_end_mb=[950.0, 710.0])
    partial = {"size": 10_000, "backend": "postgresql", "recall_at_1": float("nan")}
    lines = format_table([row, partial]).splitlines()
    assert len(lines) == 4
    assert all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert "1,000,000" in lines[2] and "812/640" in lines[2] and "1.5000" in lines[2]
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[:2] == ["10,000", "postgresql"] and set(cells[2:]) == {"-"}


def test_bench_scale_command_line(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["bench", "scale", str(tmp_path), "--sizes", "500,3_000", "--backends", "sqlite"]
    )
    assert (args.data_dir_arg, args.scale_data) == ("scale", tmp_path)
    # No --probes: the bench takes its own default (every probe LFW has).
    assert (args.sizes, args.backends, args.probes) == ([500, 3000], ["sqlite"], None)
    defaults = parser.parse_args(["bench", "scale", str(tmp_path)])
    assert defaults.sizes == [10_000, 100_000, 1_000_000]
    assert defaults.backends == ["sqlite", "postgresql"]
    # The other forms are unchanged.
    assert parser.parse_args(["bench", "load"]).scale_data is None
    assert parser.parse_args(["bench", str(tmp_path)]).data_dir_arg == tmp_path
    for bad in (["--sizes", "0"], ["--sizes", "ten"], ["--backends", "mysql"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", "scale", str(tmp_path), *bad])


@pytest.mark.parametrize("argv", [["bench", "scale"], ["bench", "load", "{tmp}"]])
def test_bench_scale_needs_its_folder_and_only_it(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from facegate.cli import main

    with pytest.raises(SystemExit):
        main([a.format(tmp=tmp_path) for a in argv])
    assert "'bench scale DATA_DIR'" in capsys.readouterr().err
