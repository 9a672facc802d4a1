"""The 1:N threshold rule (engine/openset.py): sizes 1 to 10^6, monotone, the target respected."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from facegate.engine.openset import ImpostorTail, ParetoTail, load_impostor_tail
from facegate.engine.zoo import SFACE_RECIPE
from facegate.eval.tail import fit_model

SIZES = (1, 10, 10**4, 10**6)
# Synthetic recogniser: impostor distances ~ Normal(1.0, 0.08), genuine ~ Normal(0.6, 0.1).
IMPOSTOR = stats.norm(1.0, 0.08)


@pytest.fixture(scope="module")
def synthetic() -> ImpostorTail:
    rng = np.random.default_rng(7)
    impostor = IMPOSTOR.rvs(size=2_000_000, random_state=rng)
    genuine = rng.normal(0.6, 0.1, size=5_000)
    return fit_model(impostor, genuine, "synthetic normal scores")


@pytest.fixture(scope="module")
def shipped() -> ImpostorTail:
    tail = load_impostor_tail(SFACE_RECIPE.key, "none")
    assert tail is not None
    return tail


@pytest.mark.parametrize("target", [0.01, 0.001])
def test_thresholds_tighten_with_size_and_hold_the_modelled_fpir(
    shipped: ImpostorTail, target: float
) -> None:
    distances = [shipped.threshold_distance(n, target) for n in SIZES]
    assert all(a > b for a, b in itertools.pairwise(distances))  # strictly
    for n, d in zip(SIZES, distances, strict=True):
        assert shipped.fpir(d, n) == pytest.approx(target, rel=1e-6)
    # A gallery of one is a 1:1 comparison: its threshold is the false-match-rate one.
    assert distances[0] == pytest.approx(shipped.distance_at_rate(target))


def test_the_shipped_tail_is_monotone_and_continuous_where_body_meets_tail(
    shipped: ImpostorTail,
) -> None:
    grid = np.linspace(0.5, 1.5, 2001)
    rates = [shipped.false_match_rate(float(d)) for d in grid]
    assert all(a <= b for a, b in itertools.pairwise(rates))
    u = shipped.tail.u
    assert shipped.false_match_rate(u - 1e-9) == pytest.approx(shipped.tail.p_u, rel=1e-4)
    assert shipped.false_match_rate(u + 1e-9) == pytest.approx(shipped.tail.p_u, rel=1e-3)
    for rate in (0.3, 1e-3, 1e-6, 1e-9):
        assert shipped.false_match_rate(shipped.distance_at_rate(rate)) == pytest.approx(
            rate, rel=1e-3
        )
    # Genuine comparisons come closer than impostors: the curve G rises first.
    assert shipped.genuine_rate(shipped.distance_at_rate(1e-3)) > 0.95


@pytest.mark.parametrize("target", [0.01, 0.001])
def test_the_target_is_respected_on_synthetic_scores(
    synthetic: ImpostorTail, target: float
) -> None:
    """The rule fitted on 2 M synthetic impostor scores, checked against the true distribution:
    the target itself where the data reach (sizes 1 and 10), never above it where the tail
    extrapolates (10^4: FMR ~10^-6 to 10^-7; 10^6: ~10^-8 to 10^-9, far beyond the rarest
    fitted score), where the exponential tail errs on the safe side for a normal's lighter one."""
    for n in SIZES:
        d = synthetic.threshold_distance(n, target)
        true_fpir = -math.expm1(n * math.log1p(-float(IMPOSTOR.cdf(d))))
        if n <= 10:
            assert true_fpir == pytest.approx(target, rel=0.1), (n, true_fpir)
        else:
            assert true_fpir <= target * 1.1, (n, true_fpir)
            if n == 10**4:  # safe, not absurdly so
                assert true_fpir > target / 100, (n, true_fpir)


def test_simulated_galleries_see_the_target_fpir(synthetic: ImpostorTail) -> None:
    """Strangers searched in galleries of 10 and 100 synthetic embeddings: the share named at
    the rule's threshold is the target, within the binomial noise of 20,000 strangers."""
    rng = np.random.default_rng(11)
    strangers = 20_000
    for n in (10, 100):
        threshold = synthetic.threshold_distance(n, 0.01)
        closest = IMPOSTOR.rvs(size=(strangers, n), random_state=rng).min(axis=1)
        observed = float((closest <= threshold).mean())
        sigma = math.sqrt(0.01 * 0.99 / strangers)
        assert abs(observed - 0.01) < 4 * sigma, (n, observed)


def test_pareto_tail_shapes() -> None:
    for xi in (-0.1, 0.0, 0.1):
        tail = ParetoTail(u=1.0, p_u=1e-3, xi=xi, scale=0.02)
        for rate in (1e-4, 1e-7):
            assert tail.rate(tail.distance_at(rate)) == pytest.approx(rate, rel=1e-9)
    bounded = ParetoTail(u=1.0, p_u=1e-3, xi=-0.5, scale=0.02)
    assert bounded.rate(0.5) == 0.0  # beyond the end of a bounded tail
