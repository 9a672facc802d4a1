"""``facegate eval lfw`` and ``facegate eval calibrate``: LFW verification with the real pipeline.

Every image named by the pair list is processed once: its labelled face is found, aligned and
embedded in every test-time-augmentation view; each TTA mode (none, flip, multi) is then a mean
over its subset of views, so one pass measures all modes on identical detections.

An image where the detector finds no face is retried with a relaxed detector, and failing that the
deep-funnelled centre box is used, so every pair gets a descriptor; the report also gives the
figures where such images simply match nobody, which is what a caller of the service gets.
Descriptors are cached in the data folder (derived from LFW, they never enter the repository).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.config import TTA, Settings
from facegate.engine.align import ALL_VIEWS, VIEW_INDEX
from facegate.engine.engine import FaceEngine
from facegate.engine.score import ScoreCalibration, distances, load_calibration
from facegate.engine.types import DetectedFace
from facegate.engine.zoo import REGISTRY
from facegate.eval import verification as v
from facegate.eval.lfw_data import Pair, central_box, labelled_face, read_pairs
from facegate.eval.report import record, record_curve

MODES: tuple[TTA, ...] = ("none", "flip", "multi")
# The modes each recogniser is measured and calibrated in: SFace's zoomed views were never
# chosen on development data, so only its single and mirrored passes are offered.
RECOGNIZER_MODES: dict[str, tuple[TTA, ...]] = {"sface": ("none", "flip"), "dlib": MODES}
DETECTORS = ("yunet", "mtcnn")


def engine_settings(detector: str, recognizer: str, backend: str = "onnx") -> Settings:
    return Settings(detector=detector, recognizer=recognizer, embed_backend=backend)  # type: ignore[arg-type]


def relaxed(settings: Settings) -> Settings:
    """The same engine with a detector that accepts weaker faces (LFW's hard images)."""
    return settings.model_copy(
        update={
            "min_face_size": 12,
            "detect_thresholds": (0.5, 0.5, 0.5),
            "yunet_score_threshold": 0.5,
        }
    )


def cache_label(settings: Settings) -> str:
    """Names what produced a descriptor: detector, recipe and (dlib) the backend."""
    spec = REGISTRY[settings.recognizer]
    assert spec.recipe is not None
    backend = f"-{settings.embed_backend}" if settings.recognizer == "dlib" else ""
    return re.sub(r"[^\w.-]+", "_", f"{settings.detector}-{spec.recipe.key}{backend}")


@dataclass
class DescriptorRun:
    # Per image: (views, 128) for facegate (all TTA views), (128,) for the peer.
    descriptors: dict[str, NDArray[np.float32]]
    relaxed: list[str] = field(default_factory=list)  # found only by the relaxed detector
    fallback: list[str] = field(default_factory=list)  # no face at all: centre box used
    seconds: list[float] = field(default_factory=list)
    views: tuple[int, ...] = VIEW_INDEX["multi"]  # which of ALL_VIEWS the rows hold

    def mode(self, tta: TTA, normalized: bool = False) -> dict[str, NDArray[np.float32]]:
        """Descriptors as the engine computes them in one TTA mode (the mean of its views,
        scaled to unit length for a recipe of unit descriptors)."""
        rows = [self.views.index(i) for i in VIEW_INDEX[tta]]
        means = {p: d[rows].mean(axis=0) for p, d in self.descriptors.items()}
        if normalized:
            return {p: m / max(float(np.linalg.norm(m)), 1e-12) for p, m in means.items()}
        return means


def facegate_descriptors(
    lfw_dir: Path,
    paths: list[str],
    settings: Settings,
    progress: bool = True,
    views: tuple[int, ...] = VIEW_INDEX["multi"],
) -> DescriptorRun:
    """Per-view descriptors of the labelled face of each image, cached per backend and views."""
    suffix = "" if views == VIEW_INDEX["multi"] else "-" + "".join(map(str, views))
    name = f"lfw-{cache_label(settings)}-views{suffix}.npz"
    cache = settings.data_dir / "eval-cache" / name
    run = cached_run(
        cache, paths, lambda todo: _compute_descriptors(lfw_dir, todo, settings, progress, views)
    )
    run.views = views
    return run


def cached_run(
    cache: Path, paths: list[str], compute: Callable[[list[str]], DescriptorRun]
) -> DescriptorRun:
    """Descriptors of ``paths``: those in the cache file are reused, the rest computed and added.

    Timings are those of the images computed in the run that produced each descriptor.
    """
    known = DescriptorRun({})
    if cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            stored_paths = stored["paths"].tolist()
            known = DescriptorRun(
                dict(zip(stored_paths, stored["descriptors"], strict=True)),
                stored["relaxed"].tolist(),
                stored["fallback"].tolist(),
                stored["seconds"].tolist(),
            )
    todo = [p for p in paths if p not in known.descriptors]
    if todo:
        print(f"  {len(paths) - len(todo)} images from the cache {cache}, {len(todo)} to compute")
        fresh = compute(todo)
        known.descriptors.update(fresh.descriptors)
        known.relaxed += fresh.relaxed
        known.fallback += fresh.fallback
        known.seconds += fresh.seconds
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            paths=np.array(list(known.descriptors)),
            descriptors=np.stack(list(known.descriptors.values())),
            relaxed=np.array(known.relaxed, dtype=str),
            fallback=np.array(known.fallback, dtype=str),
            seconds=np.array(known.seconds),
        )
    else:
        print(f"  (all {len(paths)} images from the cache {cache})")
    wanted = set(paths)
    return DescriptorRun(
        {p: known.descriptors[p] for p in paths},
        [p for p in known.relaxed if p in wanted],
        [p for p in known.fallback if p in wanted],
        known.seconds,
    )


def _compute_descriptors(
    lfw_dir: Path, paths: list[str], settings: Settings, progress: bool, views: tuple[int, ...]
) -> DescriptorRun:
    engine = FaceEngine(settings)
    relaxed_engine = FaceEngine(relaxed(settings))
    engine.warm_up()
    run = DescriptorRun({})
    for index, rel in enumerate(paths):
        start = time.perf_counter()
        image = engine.decode((lfw_dir / rel).read_bytes())
        face = labelled_face(engine.detect(image, quality=False), image.width, image.height)
        if face is None:
            found = relaxed_engine.detect(image, quality=False)
            face = labelled_face(found, image.width, image.height)
            (run.relaxed if face is not None else run.fallback).append(rel)
        if face is None:
            box = central_box(image.width, image.height)
            face = DetectedFace(box, 0.0, np.zeros((5, 2), np.float32))
        chosen = [ALL_VIEWS[i] for i in views]
        run.descriptors[rel] = engine.embed_views([(image, face)], chosen)[0]
        run.seconds.append(time.perf_counter() - start)
        if progress and (index + 1) % 500 == 0:
            print(f"  facegate: {index + 1}/{len(paths)} images", flush=True)
    return run


def pair_distances(
    pairs: list[Pair], descriptors: dict[str, NDArray[np.float32]]
) -> NDArray[np.float64]:
    return np.array(
        [
            float(distances(descriptors[p.first], descriptors[p.second][np.newaxis, :])[0])
            for p in pairs
        ]
    )


def _unique_paths(pairs: list[Pair]) -> list[str]:
    return sorted({p.first for p in pairs} | {p.second for p in pairs})


def _lfw_dir(data_dir: Path) -> Path:
    return data_dir / "lfw" if (data_dir / "lfw").is_dir() else data_dir


def _report(
    label: str,
    scores: NDArray[np.float64],
    pairs: list[Pair],
    fixed: list[tuple[str, float]],
    run: DescriptorRun,
    worst_score: float,
) -> None:
    """Figures under two policies for images where the detector finds no face.

    "as users run it": such an image matches nobody (its pairs score as non-matches), which is
    what a caller of either library gets. "with fallback": the face is found by a relaxed
    detector or taken from the centre box, so every pair is scored on a real descriptor.
    """
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    no_face = set(run.relaxed) | set(run.fallback)
    touched = np.array([p.first in no_face or p.second in no_face for p in pairs])
    as_users_run_it = np.where(touched, worst_score, scores)
    for policy, values in (("as users run it", as_users_run_it), ("with fallback", scores)):
        kfold = v.kfold_accuracy(values, same, folds)
        tar, _ = v.tar_at_far(values, same, 0.001)
        at_fixed = ", ".join(
            f"at {name}: {100 * v.accuracy_at(values, same, threshold):.2f} %"
            for name, threshold in fixed
        )
        print(
            f"[{label}] {policy}: {len(set(folds))}-fold {100 * kfold.mean:.2f} % "
            f"± {100 * kfold.std:.2f} ({round((1 - kfold.mean) * len(pairs))} errors); "
            f"{at_fixed}; TAR at FAR 0.1 %: {100 * tar:.2f} %"
            + ("" if kfold.held_out else " (one fold: its threshold chosen on itself)")
        )
        record(
            f"{label} {policy}",
            pairs=len(pairs),
            folds=len(set(folds)),
            kfold_accuracy=kfold.mean,
            kfold_std=kfold.std,
            per_fold=kfold.per_fold,
            thresholds=kfold.thresholds,
            threshold_held_out=kfold.held_out,
            accuracy_at={name: v.accuracy_at(values, same, t) for name, t in fixed},
            tar_at_far_0_1_percent=tar,
        )
        if policy == "as users run it":  # the curve a caller gets; one per engine and mode
            record_curve(label, values, same)


def _describe_run(label: str, run: DescriptorRun, pairs: list[Pair]) -> None:
    no_face = set(run.relaxed) | set(run.fallback)
    touched = sum(p.first in no_face or p.second in no_face for p in pairs)
    print(
        f"[{label}] images with no face from the detector: {len(no_face)} "
        f"({len(run.relaxed)} found by a relaxed detector, {len(run.fallback)} on the centre "
        f"box); pairs touching them: {touched}; "
        f"median seconds per image: {statistics.median(run.seconds):.4f}"
    )


def run_lfw(
    data_dir: Path,
    *,
    folds: int = 10,
    limit: int = 0,
    peer: bool = False,
    backend: str = "onnx",
    detector: str | None = None,
    recognizer: str | None = None,
    tta: TTA | None = None,
    product: bool = True,
) -> int:
    """LFW figures of the product path (defaults, through the service) and of the engine for
    every detector x recogniser pair and TTA mode (or only those named)."""
    lfw_dir = _lfw_dir(data_dir)
    pairs = [p for p in read_pairs(lfw_dir / "pairs.txt", limit or None) if p.fold < folds]
    paths = _unique_paths(pairs)
    print(
        f"LFW: {len(pairs)} pairs ({sum(p.same for p in pairs)} matched) over {len(paths)} "
        f"images, {len({p.fold for p in pairs})} folds"
    )
    if product:
        from facegate.eval.product import run_product_path

        run_product_path(lfw_dir, pairs, Settings())
    detectors = (detector,) if detector else DETECTORS
    recognizers = (recognizer,) if recognizer else tuple(RECOGNIZER_MODES)
    for detector_name in detectors:
        for recognizer_name in recognizers:
            settings = engine_settings(detector_name, recognizer_name, backend)
            _engine_figures(lfw_dir, pairs, paths, settings, tta)
    if peer:
        from facegate.eval.peer import peer_descriptors

        peer_cache = Settings().data_dir / "eval-cache" / "lfw-face_recognition-1.3.0.npz"
        peer_run = cached_run(peer_cache, paths, lambda todo: peer_descriptors(lfw_dir, todo))
        _describe_run("face_recognition 1.3.0", peer_run, pairs)
        # face_recognition's own rule: the same person when distance <= tolerance (0.6).
        peer_scores = -pair_distances(pairs, peer_run.descriptors)
        fixed = [("its tolerance 0.6", -0.6)]
        _report("face_recognition 1.3.0", peer_scores, pairs, fixed, peer_run, -np.inf)
    return 0


def _engine_figures(
    lfw_dir: Path, pairs: list[Pair], paths: list[str], settings: Settings, tta: TTA | None
) -> None:
    spec = REGISTRY[settings.recognizer]
    assert spec.recipe is not None
    modes = RECOGNIZER_MODES[settings.recognizer] if tta is None else (tta,)
    views = tuple(sorted({i for mode in modes for i in VIEW_INDEX[mode]}))
    label = f"engine {settings.detector}+{settings.recognizer}"
    print(f"[{label}] recipe {spec.recipe.key}")
    run = facegate_descriptors(lfw_dir, paths, settings, views=views)
    _describe_run(label, run, pairs)
    if run.fallback:
        print(f"[{label}] centre-box images: {', '.join(run.fallback)}")
    for mode in modes:
        calibration = load_calibration(spec.recipe.key, mode)
        scores = calibration.score(pair_distances(pairs, run.mode(mode, spec.recipe.normalized)))
        fixed = [("score 0.4", 0.4), ("score 0.5", 0.5)]
        _report(f"{label} tta={mode}", scores, pairs, fixed, run, 0.0)


def run_calibrate(data_dir: Path, *, backend: str = "onnx", recognizer: str | None = None) -> int:
    """Fit the score curve of every recogniser and TTA mode on LFW's DevTrain pairs (never
    the test pairs), with the default detector."""
    from facegate.engine.score import CALIBRATION_FILE

    lfw_dir = _lfw_dir(data_dir)
    pairs = read_pairs(lfw_dir / "pairsDevTrain.txt")
    same = np.array([p.same for p in pairs])
    target = Path(__file__).resolve().parent.parent / "models" / CALIBRATION_FILE
    detector = Settings().detector
    for name in (recognizer,) if recognizer else tuple(RECOGNIZER_MODES):
        spec = REGISTRY[name]
        assert spec.recipe is not None
        modes = RECOGNIZER_MODES[name]
        views = tuple(sorted({i for mode in modes for i in VIEW_INDEX[mode]}))
        settings = engine_settings(detector, name, backend)
        run = facegate_descriptors(lfw_dir, _unique_paths(pairs), settings, views=views)
        for mode in modes:
            dist = pair_distances(pairs, run.mode(mode, spec.recipe.normalized))
            calibration = fit_calibration(dist, same, f"{detector}+{name}, tta={mode}")
            calibration.save(target, spec.recipe.key, mode)
            scores = calibration.score(dist)
            record(
                f"calibration {name} tta={mode}",
                recipe=spec.recipe.key,
                midpoint=calibration.midpoint,
                slope=calibration.slope,
                devtrain_accuracy_at_0_4=v.accuracy_at(scores, same, 0.4),
                devtrain_accuracy_at_0_5=v.accuracy_at(scores, same, 0.5),
            )
            print(
                f"[{name} tta={mode}] midpoint {calibration.midpoint:.4f}, slope "
                f"{calibration.slope:.2f}; DevTrain accuracy at 0.4: "
                f"{100 * v.accuracy_at(scores, same, 0.4):.2f} %, at 0.5: "
                f"{100 * v.accuracy_at(scores, same, 0.5):.2f} %"
            )
    print(f"written to {target}")
    return 0


def fit_calibration(
    dist: NDArray[np.float64], same: NDArray[np.bool_], key: str
) -> ScoreCalibration:
    """Logistic curve whose 0.45 point is the best DevTrain threshold.

    The slope is the maximum-likelihood logistic fit of P(same | distance); the midpoint is then
    placed so that the best-accuracy distance maps to score 0.45, halfway between the seed's two
    operating points (0.4 and 0.5), so both stay near the optimum.
    """
    slope = _logistic_slope(dist, same)
    best_distance = -v.best_threshold(-dist, same)
    midpoint = best_distance - float(np.log(1 / 0.45 - 1)) / slope
    return ScoreCalibration(
        midpoint=midpoint,
        slope=slope,
        source=f"LFW pairsDevTrain.txt ({len(dist)} pairs), tta={key}",
    )


def _logistic_slope(dist: NDArray[np.float64], same: NDArray[np.bool_]) -> float:
    """Maximum-likelihood logistic regression of same ~ distance by Newton's method."""
    x = np.column_stack([np.ones_like(dist), dist])
    y = same.astype(np.float64)
    w = np.zeros(2)
    for _ in range(50):
        p = 1 / (1 + np.exp(-(x @ w)))
        gradient = x.T @ (y - p)
        hessian = -(x.T * (p * (1 - p))) @ x
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(-w[1])
