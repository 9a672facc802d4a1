"""Open-set decision: who is this, or nobody in the collection?

A 1:1 threshold applied to N comparisons lets a stranger through N times as often: the
false-positive identification rate (FPIR) of a gallery of N embeddings is about N times one
comparison's false-match rate. So the threshold follows from the collection's size instead:
training computes, from the number of embeddings in the snapshot and the recogniser's modelled
impostor tail (engine/openset.py), the score at which a stranger is named as someone with the
target probability (``identify_target_fpir``, 1 %; ``unknowns_target_fpir``, 0.1 %, for
collections created with ``unknowns: true``). Identify then compares the best score with the
stored threshold: no extra work per request.

``score`` keeps its 1:1 meaning (the calibrated similarity of the face and the best enrollment);
``unknown_probability`` is the 1:N answer: the probability that the person is not in the
collection given the best distance *and* the collection's size.

A recogniser with no shipped tail model falls back to the fixed ``identify_threshold`` and says
so in the collection's warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.config import Settings
from facegate.engine.openset import ImpostorTail
from facegate.service.ports import Engine
from facegate.store.models import Collection


@dataclass(frozen=True)
class Candidate:
    enrollment_id: str
    name: str | None
    score: float


@dataclass(frozen=True)
class ThresholdPlan:
    """What training computes for a snapshot of ``people`` enrollments, ``embeddings`` rows."""

    people: int
    embeddings: int
    target_fpir: float | None  # None: no tail model, the fixed fallback threshold
    threshold: float  # on the calibrated score
    expected_tpir: float | None  # a probe of an enrolled person within the threshold
    warning: str | None


@dataclass(frozen=True)
class OpenSetPolicy:
    threshold: float
    comparisons: int  # embeddings in the snapshot: the impostor comparisons a stranger gets
    tail: ImpostorTail | None

    def decide(self, ranked: list[Candidate]) -> Candidate | None:
        """The identified enrollment, or None for unknown. ``ranked`` is best first."""
        if not ranked or ranked[0].score < self.threshold:
            return None
        return ranked[0]

    def unknown_probability(self, best_distance: float | None, best_score: float) -> float:
        """P(the person is not in the collection | best distance, collection size)."""
        if best_distance is None:
            return 1.0
        if self.tail is None:
            return 1.0 - best_score
        return self.tail.unknown_probability(best_distance, best_score, self.comparisons)


class OpenSetPlanner:
    """Thresholds for a collection's size, from the running engine's tail model."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine

    def target(self, *, unknowns: bool) -> float | None:
        if self._engine.impostor_tail is None:
            return None
        s = self._settings
        return s.unknowns_target_fpir if unknowns else s.identify_target_fpir

    def plan(self, *, people: int, embeddings: int, unknowns: bool) -> ThresholdPlan:
        tail = self._engine.impostor_tail
        target = self.target(unknowns=unknowns)
        if tail is None or target is None:
            return ThresholdPlan(
                people,
                embeddings,
                None,
                self._settings.identify_threshold,
                None,
                f"no impostor-tail model ships for recipe {self._engine.recipe.key} with "
                f"tta={self._engine.tta}: the fixed threshold {self._settings.identify_threshold} "
                "is applied, so strangers are named more often as the collection grows",
            )
        comparisons = max(1, embeddings)
        distance = tail.threshold_distance(comparisons, target)
        threshold = float(self._engine.calibration.score(distance))
        tpir = tail.genuine_rate(distance)
        warning = None
        if tpir < self._settings.identify_warn_tpir:
            warning = (
                f"to hold a false-positive identification rate of {target:.2%} over "
                f"{embeddings} embeddings of {people} people the threshold is score "
                f"{threshold:.6f}, which a probe of an enrolled person is expected to reach "
                f"against one image of them only {tpir:.1%} of the time (below "
                f"{self._settings.identify_warn_tpir:.0%}): split the collection or accept a "
                "higher FPIR "
                "(FACEGATE_IDENTIFY_TARGET_FPIR / FACEGATE_UNKNOWNS_TARGET_FPIR)"
            )
        return ThresholdPlan(people, embeddings, target, threshold, tpir, warning)

    def effective(self, collection: Collection) -> ThresholdPlan | None:
        """The plan identify applies to a trained collection: the one training stored, or,
        when the settings or the recogniser changed since, the same rule on its stored size."""
        if collection.trained_revision is None:
            return None
        target = self.target(unknowns=collection.unknowns)
        # Without a tail model the plan is the fixed setting: read it afresh, never stored.
        threshold = collection.identify_threshold
        if (
            threshold is not None
            and target is not None
            and collection.identify_target_fpir == target
        ):
            return ThresholdPlan(
                collection.trained_people or 0,
                collection.trained_embeddings or 0,
                target,
                threshold,
                collection.identify_expected_tpir,
                collection.identify_warning,
            )
        return self.plan(
            people=collection.trained_people or 0,
            embeddings=collection.trained_embeddings or 0,
            unknowns=collection.unknowns,
        )

    def policy(self, plan: ThresholdPlan) -> OpenSetPolicy:
        tail = self._engine.impostor_tail if plan.target_fpir is not None else None
        return OpenSetPolicy(plan.threshold, max(1, plan.embeddings), tail)
