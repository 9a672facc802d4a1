"""LFW through the product path: every pair enrolled and matched by the service, at the defaults.

The first image of a pair is enrolled by the same code as ``POST /v1/enroll`` (decode, largest
face, the quality gate, embedding, a real SQLite store) and the second is matched by the code of
``POST /v1/match`` against it, with the default settings. An enrollment the gate refuses, or a
probe with no face, scores 0: an error for a matched pair, as a caller of the API would see it.
Each image is enrolled once and reused by every pair that starts with it.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from facegate.config import Settings
from facegate.engine.engine import FaceEngine
from facegate.errors import NoUsableFace
from facegate.eval import verification as v
from facegate.eval.lfw_data import Pair
from facegate.eval.report import record, record_curve
from facegate.service.common import Tenant
from facegate.service.container import Services
from facegate.store.db import Database


def run_product_path(lfw_dir: Path, pairs: list[Pair], settings: Settings) -> dict[str, float]:
    """Print and return the product path's figures over ``pairs``."""
    with tempfile.TemporaryDirectory(prefix="facegate-eval-") as folder:
        store = settings.model_copy(update={"database_url": f"sqlite:///{folder}/eval.db"})
        engine = FaceEngine(store)
        engine.warm_up()
        services = Services.build(store, engine, Database.from_settings(store))
        created = services.keys.create("eval")
        tenant = services.keys.authenticate(created.secret)
        started = time.perf_counter()
        scores, refused, unmatched = _scores(lfw_dir, pairs, services, tenant)
        seconds = time.perf_counter() - started
        # What the refused images would have scored without the gate: the evidence for it.
        ungated_settings = store.model_copy(
            update={"min_enroll_eye_distance": 0.0, "max_enroll_abs_yaw": 180.0}
        )
        ungated = Services.build(ungated_settings, engine, services.database)
        touched = [p for p in pairs if p.first in refused]
        ungated_scores, _, _ = _scores(lfw_dir, touched, ungated, tenant)
        services.database.dispose()
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    kfold = v.kfold_accuracy(scores, same, folds)
    tar, _ = v.tar_at_far(scores, same, 0.001)
    at_04 = v.accuracy_at(scores, same, 0.4)
    at_05 = v.accuracy_at(scores, same, settings.match_threshold)
    reasons = Counter(_reason(message) for message in refused.values())
    print(
        f"[product path: /v1/enroll + /v1/match code, defaults: {settings.detector} + "
        f"{settings.recognizer}, tta={engine.tta}] {len({p.first for p in pairs})} images "
        f"enrolled, {len(refused)} refused by the gate "
        f"({100 * len(refused) / max(1, len({p.first for p in pairs})):.2f} %), "
        f"{len(unmatched)} probes without a face; {seconds:.0f} s"
    )
    for reason, count in reasons.most_common():
        print(f"    refused {count}: {reason}")
    _gate_evidence(pairs, scores, refused, touched, ungated_scores, settings.match_threshold)
    print(
        f"[product path] {len(set(folds))}-fold {100 * kfold.mean:.2f} % ± {100 * kfold.std:.2f} "
        f"({round((1 - kfold.mean) * len(pairs))} errors); at score 0.4: {100 * at_04:.2f} %; "
        f"at the default match threshold {settings.match_threshold}: {100 * at_05:.2f} %; "
        f"TAR at FAR 0.1 %: {100 * tar:.2f} %"
        + ("" if kfold.held_out else " (one fold: its threshold chosen on itself)")
    )
    record(
        "product path",
        pairs=len(pairs),
        folds=len(set(folds)),
        kfold_accuracy=kfold.mean,
        kfold_std=kfold.std,
        threshold_held_out=kfold.held_out,
        accuracy_at_0_4=at_04,
        accuracy_at_default_threshold=at_05,
        default_threshold=settings.match_threshold,
        tar_at_far_0_1_percent=tar,
        refused=dict(reasons),
        probes_without_face=len(unmatched),
    )
    record_curve("product path (defaults)", scores, same)
    return {
        "kfold": kfold.mean,
        "at_0.4": at_04,
        "at_default": at_05,
        "tar_at_far_0.1%": tar,
        "refused": float(len(refused)),
    }


def _reason(message: str) -> str:
    """The kind of refusal, without its figures ("face turned too far")."""
    return "; ".join(part.split(" (")[0] for part in message.split("; "))


def _gate_evidence(
    pairs: list[Pair],
    scores: np.ndarray,
    refused: dict[str, str],
    touched: list[Pair],
    ungated: np.ndarray,
    threshold: float,
) -> None:
    """Matched pairs of refused images, scored without the gate, against the accepted ones."""
    accepted = [s for p, s in zip(pairs, scores, strict=True) if p.same and p.first not in refused]
    blocked = [s for p, s in zip(touched, ungated, strict=True) if p.same]
    if not blocked:
        return
    for label, values in (("accepted", accepted), ("refused, scored ungated", blocked)):
        array = np.array(values)
        print(
            f"    matched pairs of {label} images: {len(array)}, median score "
            f"{np.median(array):.3f}, mean {array.mean():.3f}, missed at {threshold}: "
            f"{100 * (array < threshold).mean():.1f} %"
        )
    for pair, score in zip(touched, ungated, strict=True):
        print(
            f"    refused {pair.first} ({refused[pair.first]}): "
            f"{'matched' if pair.same else 'mismatched'} pair with {pair.second}, "
            f"ungated score {score:.3f}"
        )


def _scores(
    lfw_dir: Path, pairs: list[Pair], services: Services, tenant: Tenant
) -> tuple[np.ndarray, dict[str, str], set[str]]:
    enrolled: dict[str, str | None] = {}
    refused: dict[str, str] = {}
    unmatched: set[str] = set()
    scores = np.zeros(len(pairs))
    for index, pair in enumerate(pairs):
        if pair.first not in enrolled:
            try:
                enrolled[pair.first] = services.enrollments.create(
                    tenant, {"img0": (lfw_dir / pair.first).read_bytes()}, name=pair.first
                )
            except NoUsableFace as exc:
                enrolled[pair.first] = None
                refused[pair.first] = exc.message.split(": ", 1)[-1]
        enrollment_id = enrolled[pair.first]
        if enrollment_id is None:
            continue
        try:
            result = services.recognition.match(
                tenant, enrollment_id, (lfw_dir / pair.second).read_bytes()
            )
        except NoUsableFace:
            unmatched.add(pair.second)
            continue
        scores[index] = result[0].score
        if (index + 1) % 1000 == 0:
            print(f"  product path: {index + 1}/{len(pairs)} pairs", flush=True)
    return scores, refused, unmatched
