"""``facegate eval spoof DATA_DIR``: presentation-attack detection figures, ISO/IEC 30107-3 terms.

1. The shipped model (``facegate/models/spoof_model.npz``) on the NUAA test split (session 3,
   never trained on): APCER, BPCER, ACER at the calibrated decision point 0.5, and AUC.
2. Cross-dataset limits, with models of the same method trained here on the fly: NUAA train
   only → CelebA-Spoof subset, and CelebA-Spoof only → NUAA test split.
3. Each single check: Silent-Face's three samples and InspireFace's photo of a monitor.

Images where no face is found are counted and left out of the figures (the service answers
them with 422, not with a verdict).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path
from typing import Any

from facegate.config import Settings
from facegate.engine.spoof import SpoofDetector, load_spoof_detector, model_path
from facegate.engine.spoof.model import SpoofModel
from facegate.eval.report import record
from facegate.spoof import data
from facegate.spoof.data import Sample
from facegate.spoof.metrics import PadFigures, pad_figures
from facegate.spoof.train import _digest, featurize, train_on

TIMED_FACES = 30


def _figures(
    model: SpoofModel, samples: list[Sample], cache_dir: Path, progress: str
) -> tuple[PadFigures, int]:
    featurized = featurize(
        samples, model.extractor(), cache_dir, _digest(model.config, model.backbone), progress
    )
    scores = model.probability(featurized.features)
    return pad_figures(scores, featurized.fake), len(featurized.no_face)


def _describe(path: Path, model: SpoofModel) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    print(f"model: {path} ({path.stat().st_size} bytes, sha256 {digest}...)")
    for key in ("created", "command", "training_data", "features", "backbone", "c", "cv"):
        if key in model.meta:
            print(f"  {key}: {model.meta[key]}")


def _time_per_face(detector: SpoofDetector, samples: list[Sample], cache_dir: Path) -> float:
    """Median seconds of one probability_fake call (crops, backbone, head), detection excluded."""
    faces = data.FaceCache(cache_dir)
    seconds = []
    for sample in samples[:TIMED_FACES]:
        rgb = data.load_rgb(sample.path)
        face = faces.face(sample, rgb)
        if face is None:
            continue
        start = time.perf_counter()
        detector.probability_fake(rgb, face)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds) if seconds else float("nan")


def run_spoof_eval(
    data_dir: Path, *, cache_dir: Path | None = None, model_file: Path | None = None
) -> int:
    cache_dir = cache_dir or data.default_cache_dir()
    settings = Settings()
    path = model_file or model_path()
    detector = load_spoof_detector(settings, path)
    model = detector.model
    _describe(path, model)

    nuaa = data.nuaa_samples(data_dir)
    nuaa_train = [s for s in nuaa if s.split == "train"]
    nuaa_test = [s for s in nuaa if s.split == "test"]
    celeba = data.celeba_samples(data_dir)

    print("\nShipped model, NUAA test split (session 3; its sessions never trained on):")
    figures, missing = _figures(model, nuaa_test, cache_dir, "NUAA test")
    print(f"  {figures.line()}; no face: {missing}")
    record("shipped model, NUAA test", **_pad(figures), no_face=missing)
    print(
        f"  time per face (features + head, detection excluded, median of {TIMED_FACES}): "
        f"{1000 * _time_per_face(detector, nuaa_test, cache_dir):.1f} ms"
    )

    print("\nCross-dataset (same method, trained here on one data set only):")
    for name, train, test in (
        ("NUAA train -> CelebA-Spoof", nuaa_train, celeba),
        ("CelebA-Spoof -> NUAA test", celeba, nuaa_test),
    ):
        try:
            fit, _ = train_on(
                train, model.config, model.backbone, cache_dir, hellinger=model.hellinger
            )
        except ValueError as exc:  # e.g. features that do not separate the classes out of fold
            print(f"  {name:27} no model: {exc}")
            continue
        cross, missing = _figures(fit.model, test, cache_dir, "")
        print(f"  {name:27} {cross.line()}; no face: {missing} (C={fit.c})")
        record(f"cross-dataset {name}", **_pad(cross), no_face=missing, c=fit.c)

    print(f"\nSingle checks (decision point {settings.spoof_threshold}):")
    faces = data.FaceCache(cache_dir)
    for sample in data.check_samples(data_dir):
        rgb = data.load_rgb(sample.path)
        face = faces.face(sample, rgb)
        truth = "fake" if sample.fake else "real"
        if face is None:
            print(f"  {sample.key:40} truth {truth}: no face found")
            continue
        score = detector.probability_fake(rgb, face)
        said = "fake" if score >= settings.spoof_threshold else "real"
        verdict = "correct" if said == truth else "MISSED"
        print(f"  {sample.key:40} truth {truth}: p(fake) {score:.3f} -> {said} ({verdict})")
        record(f"single check {sample.key}", truth=truth, p_fake=score, said=said)
    faces.save()
    return 0


def _pad(figures: Any) -> dict[str, Any]:
    """A figures object's numbers, by name, for the JSON report."""
    return {k: v for k, v in vars(figures).items() if isinstance(v, int | float)}
