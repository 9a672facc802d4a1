"""Open-set decision: who is this, or nobody in the collection?

A face is identified as the best-scoring enrollment when that score reaches the threshold.
Collections created with ``unknowns: true`` ask for more: a higher threshold
(``unknowns_identify_threshold``) *and* a lead of at least ``unknowns_identify_margin`` over the
runner-up enrollment, so a face that looks about as much like two people is called unknown
instead of being given to one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from facegate.config import Settings


@dataclass(frozen=True)
class Candidate:
    enrollment_id: str
    name: str | None
    score: float


@dataclass(frozen=True)
class OpenSetPolicy:
    threshold: float
    margin: float

    @classmethod
    def for_collection(cls, settings: Settings, *, unknowns: bool) -> OpenSetPolicy:
        if unknowns:
            return cls(settings.unknowns_identify_threshold, settings.unknowns_identify_margin)
        return cls(settings.identify_threshold, 0.0)

    def decide(self, ranked: list[Candidate]) -> Candidate | None:
        """The identified enrollment, or None for unknown. ``ranked`` is best first."""
        if not ranked or ranked[0].score < self.threshold:
            return None
        runner_up = ranked[1].score if len(ranked) > 1 else 0.0
        # The epsilon keeps a lead of exactly the margin a pass despite float rounding.
        if ranked[0].score - runner_up < self.margin - 1e-9:
            return None
        return ranked[0]


def unknown_probability(ranked: list[Candidate]) -> float:
    """1 − the best score: the calibrated chance that even the closest enrollment is not them."""
    return 1.0 - ranked[0].score if ranked else 1.0
