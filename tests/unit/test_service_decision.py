"""Open-set decisions: the threshold follows the collection's size and the target FPIR."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from facegate.config import Settings
from facegate.service.decision import Candidate, OpenSetPlanner, OpenSetPolicy

if TYPE_CHECKING:
    from tests.unit.conftest import FakeEngine


def _ranked(*scores: float) -> list[Candidate]:
    return [Candidate(f"e{i}", f"person {i}", s) for i, s in enumerate(scores)]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [((0.9, 0.85), "e0"), ((0.6,), "e0"), ((0.59, 0.1), None), ((), None)],
)
def test_the_best_enrollment_is_named_when_it_reaches_the_threshold(
    scores: tuple[float, ...], expected: str | None
) -> None:
    decided = OpenSetPolicy(0.6, 10, None).decide(_ranked(*scores))
    assert (decided.enrollment_id if decided else None) == expected


def test_thresholds_rise_with_size_and_for_unknowns_collections(
    settings: Settings, engine: FakeEngine
) -> None:
    planner = OpenSetPlanner(settings, engine)
    plain = [planner.plan(people=n, embeddings=n, unknowns=False) for n in (1, 10, 10**4, 10**6)]
    strict = [planner.plan(people=n, embeddings=n, unknowns=True) for n in (1, 10, 10**4, 10**6)]
    thresholds = [p.threshold for p in plain]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == 4
    assert all(s.threshold > p.threshold for s, p in zip(strict, plain, strict=True))
    assert {p.target_fpir for p in plain} == {settings.identify_target_fpir}
    assert {p.target_fpir for p in strict} == {settings.unknowns_target_fpir}
    tail = engine.impostor_tail
    assert tail is not None
    for plan in plain + strict:
        distance = engine.calibration.distance_at(plan.threshold)
        assert plan.target_fpir is not None
        assert tail.fpir(distance, plan.embeddings) == pytest.approx(plan.target_fpir, rel=1e-4)


def test_more_embeddings_per_person_means_a_stricter_threshold(
    settings: Settings, engine: FakeEngine
) -> None:
    planner = OpenSetPlanner(settings, engine)
    one = planner.plan(people=100, embeddings=100, unknowns=False)
    three = planner.plan(people=100, embeddings=300, unknowns=False)
    assert three.threshold > one.threshold


def test_a_low_expected_tpir_is_warned_about_with_the_figure(engine: FakeEngine) -> None:
    picky = Settings(identify_warn_tpir=0.99)
    plan = OpenSetPlanner(picky, engine).plan(people=10**5, embeddings=10**5, unknowns=False)
    assert plan.expected_tpir is not None and plan.expected_tpir < 0.99
    assert plan.warning is not None and f"{plan.expected_tpir:.1%}" in plan.warning
    calm = OpenSetPlanner(Settings(identify_warn_tpir=0.0), engine)
    assert calm.plan(people=10**5, embeddings=10**5, unknowns=False).warning is None


def test_without_a_tail_model_the_fixed_threshold_applies_with_a_warning(
    settings: Settings, engine: FakeEngine
) -> None:
    engine.impostor_tail = None
    plan = OpenSetPlanner(settings, engine).plan(people=5, embeddings=9, unknowns=True)
    assert (plan.threshold, plan.target_fpir) == (settings.identify_threshold, None)
    assert plan.warning is not None and "no impostor-tail model" in plan.warning
    policy = OpenSetPlanner(settings, engine).policy(plan)
    assert policy.unknown_probability(0.3, 0.8) == pytest.approx(0.2)


def test_unknown_probability_is_the_1_to_1_answer_for_one_embedding_and_grows_with_size(
    engine: FakeEngine,
) -> None:
    tail = engine.impostor_tail
    distance = 0.5
    score = float(engine.calibration.score(distance))
    alone = OpenSetPolicy(0.0, 1, tail).unknown_probability(distance, score)
    assert alone == pytest.approx(1 - score, rel=1e-6)
    sizes = [1, 10, 1000, 10**6]
    probabilities = [
        OpenSetPolicy(0.0, n, tail).unknown_probability(distance, score) for n in sizes
    ]
    assert probabilities == sorted(probabilities) and probabilities[-1] > 0.5
    assert OpenSetPolicy(0.0, 10, tail).unknown_probability(None, 0.0) == 1.0
