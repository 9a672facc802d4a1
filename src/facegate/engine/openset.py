"""The recogniser's impostor-score tail, and what an open-set (1:N) decision derives from it.

One comparison of a stranger with one gallery embedding is a false match when their distance is
at most ``d``: its rate is ``F(d)`` (the false-match rate, FMR). A stranger is falsely identified
in a gallery of ``n`` embeddings when *any* of its ``n`` comparisons is a false match:

    FPIR(d, n) = 1 - (1 - F(d)) ** n                       (n independent comparisons)

so holding a target false-positive identification rate ``a`` needs the threshold distance

    d(n, a) = F^-1(1 - (1 - a) ** (1 / n))                 (about F^-1(a / n) for small a)

which moves to ever rarer impostor scores as the gallery grows: 1 % at a gallery of 10^6 asks for
an FMR near 10^-8, far beyond what any development set measures. ``F`` is therefore modelled in
two parts, fitted by ``facegate eval tail`` on LFW's development identities only (the people of
View 1's pairsDevTrain.txt, never pairs.txt, which is what the evaluations report on):

- the body (FMR from 1 down to ``p_u``): the empirical rate at knots, interpolated in log-rate;
- the tail (FMR below ``p_u``, distances below ``u``): a generalised Pareto distribution of how
  far below ``u`` an impostor distance falls (peaks over threshold, the extreme-value model of a
  distribution's tail): F(d) = p_u * (1 + xi * (u - d) / scale) ** (-1 / xi).

Counting embeddings rather than people is measured, not assumed: on DevTrain and DevTest a person
enrolled from two images draws false matches 1.6-2.1 times as often as from one, so their two
comparisons are nearly independent and ``n`` is the snapshot's number of embeddings.

The genuine (mated) distances of the same development data give ``G(d)``, the rate at which a
probe of an enrolled person is within ``d`` of one image of them: the expected true-positive
identification rate at a threshold (before rank errors), used to warn when a gallery is so large
that the target FPIR leaves a low TPIR.

The run-time side is closed-form arithmetic on a handful of numbers (no SciPy at run time).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

TAIL_FILE = "impostor_tail.json"


@dataclass(frozen=True)
class ParetoTail:
    """Generalised Pareto model of how far below ``u`` impostor distances fall."""

    u: float  # the distance where the tail starts
    p_u: float  # F(u): the impostor rate at or below u
    xi: float  # shape (0: exponential; < 0: bounded; > 0: heavy)
    scale: float

    def rate(self, distance: float) -> float:
        """F(d) for d <= u."""
        y = max(0.0, self.u - distance)
        if abs(self.xi) < 1e-12:
            return self.p_u * math.exp(-y / self.scale)
        base = 1.0 + self.xi * y / self.scale
        if base <= 0.0:  # beyond a bounded tail's end
            return 0.0
        return float(self.p_u * base ** (-1.0 / self.xi))

    def distance_at(self, rate: float) -> float:
        """F^-1(rate) for rate <= p_u."""
        q = min(1.0, rate / self.p_u)
        if abs(self.xi) < 1e-12:
            y = -self.scale * math.log(q)
        else:
            y = self.scale / self.xi * (q ** (-self.xi) - 1.0)
        return max(0.0, self.u - y)


@dataclass(frozen=True)
class ImpostorTail:
    """F (impostors) and G (genuine) of one recipe and TTA mode, as distances."""

    # (distance, log10 F(distance)) with distances ascending, from u (F = p_u) to F = 1.
    body: tuple[tuple[float, float], ...]
    tail: ParetoTail
    # (distance, G(distance)) with distances ascending: the genuine rate within a distance.
    genuine: tuple[tuple[float, float], ...]
    source: str = "default"

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> ImpostorTail:
        return cls(
            body=tuple((float(d), float(p)) for d, p in entry["body"]),
            tail=ParetoTail(**entry["tail"]),
            genuine=tuple((float(d), float(p)) for d, p in entry["genuine"]),
            source=str(entry.get("source", "")),
        )

    # The model ---------------------------------------------------------------------------
    def false_match_rate(self, distance: float) -> float:
        """F(d): the rate at which one stranger-to-embedding comparison is within ``d``."""
        if distance <= self.tail.u:
            return self.tail.rate(distance)
        ds = [d for d, _ in self.body]
        logs = [p for _, p in self.body]
        return float(min(1.0, 10.0 ** np.interp(distance, ds, logs)))

    def distance_at_rate(self, rate: float) -> float:
        """F^-1: the distance at which one comparison's false-match rate is ``rate``."""
        if rate <= self.tail.p_u:
            return self.tail.distance_at(rate)
        ds = [d for d, _ in self.body]
        logs = [p for _, p in self.body]
        return float(np.interp(math.log10(min(rate, 1.0)), logs, ds))

    def genuine_rate(self, distance: float) -> float:
        """G(d): the rate at which a mated probe is within ``d`` of one image of its person."""
        ds = [d for d, _ in self.genuine]
        ps = [p for _, p in self.genuine]
        return float(np.interp(distance, ds, ps, left=0.0, right=1.0))

    # What the open-set decision needs ----------------------------------------------------
    def fpir(self, distance: float, comparisons: int) -> float:
        """P(the closest of ``comparisons`` impostor embeddings is within ``distance``)."""
        rate = self.false_match_rate(distance)
        if rate >= 1.0:
            return 1.0
        return -math.expm1(max(1, comparisons) * math.log1p(-rate))

    def threshold_distance(self, comparisons: int, target_fpir: float) -> float:
        """The distance at which a gallery of ``comparisons`` embeddings has FPIR = target."""
        if not 0.0 < target_fpir < 1.0:
            raise ValueError("the target FPIR must be strictly between 0 and 1")
        per_comparison = -math.expm1(math.log1p(-target_fpir) / max(1, comparisons))
        return self.distance_at_rate(per_comparison)

    def unknown_probability(self, distance: float, score: float, comparisons: int) -> float:
        """P(not in the collection | the best distance, the collection's size), at even odds.

        With the 1:1 likelihood ratio LR = score / (1 - score) (the calibrated score is P(same)
        at even odds), a best distance ``d`` over ``n`` comparisons is explained by

        - "known": the mate is at ``d`` and the n - 1 others are farther, or the mate is
          farther and an impostor is at ``d``:
          density f_g (1 - F)^(n-1) + (1 - G) (n - 1) f_i (1 - F)^(n-2);
        - "unknown": one of ``n`` impostors is at ``d``, the others farther: n f_i (1 - F)^(n-1);

        so odds(known) = (LR (1 - F) + (1 - G) (n - 1)) / (n (1 - F)). At n = 1 this is the 1:1
        answer, 1 - score; in a large gallery a score that one comparison would call "same" is
        no evidence when n strangers would often reach it.
        """
        n = max(1, comparisons)
        clipped = min(max(score, 1e-15), 1.0 - 1e-15)
        likelihood_ratio = clipped / (1.0 - clipped)
        survive = 1.0 - min(self.false_match_rate(distance), 1.0 - 1e-12)
        farther = 1.0 - self.genuine_rate(distance)
        odds_known = (likelihood_ratio * survive + farther * (n - 1)) / (n * survive)
        return 1.0 / (1.0 + odds_known)


def load_impostor_tail(recipe: str, tta: str) -> ImpostorTail | None:
    """The shipped model of one recipe in one TTA mode; None when none ships for it."""
    text = (resources.files("facegate.models") / TAIL_FILE).read_text()
    entry = json.loads(text).get(recipe, {}).get(tta)
    return None if entry is None else ImpostorTail.from_json(entry)
