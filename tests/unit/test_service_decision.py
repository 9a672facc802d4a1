"""Open-set decisions: threshold for every collection, a margin too for unknowns collections."""

from __future__ import annotations

import pytest

from facegate.config import Settings
from facegate.service.decision import Candidate, OpenSetPolicy, unknown_probability

SETTINGS = Settings(
    identify_threshold=0.5, unknowns_identify_threshold=0.6, unknowns_identify_margin=0.1
)


def _ranked(*scores: float) -> list[Candidate]:
    return [Candidate(f"e{i}", f"person {i}", s) for i, s in enumerate(scores)]


@pytest.mark.parametrize(
    ("scores", "plain", "strict"),
    [
        ((0.9, 0.2), "e0", "e0"),  # clear winner for both
        ((0.55, 0.1), "e0", None),  # passes 0.5, not 0.6
        ((0.45,), None, None),  # nobody passes
        ((0.9, 0.85), "e0", None),  # high but too close to the runner-up
        ((0.9, 0.8), "e0", "e0"),  # exactly the margin
        ((0.7,), "e0", "e0"),  # no runner-up at all
        ((), None, None),
    ],
)
def test_decisions(scores: tuple[float, ...], plain: str | None, strict: str | None) -> None:
    ranked = _ranked(*scores)
    for unknowns, expected in ((False, plain), (True, strict)):
        decided = OpenSetPolicy.for_collection(SETTINGS, unknowns=unknowns).decide(ranked)
        assert (decided.enrollment_id if decided else None) == expected, (scores, unknowns)


def test_unknown_probability_is_one_minus_the_best_score() -> None:
    assert unknown_probability(_ranked(0.8, 0.3)) == pytest.approx(0.2)
    assert unknown_probability([]) == 1.0
