"""``facegate eval lfw`` and ``facegate eval calibrate``: LFW verification with the real pipeline.

Every image named by the pair list is processed; an image where MTCNN finds no face is retried
with a relaxed detector, and failing that the deep-funnelled centre box is used, so nothing is
dropped and every pair is scored. Descriptors are cached under the data folder's eval cache.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.align import ALIGNMENT
from facegate.engine.engine import FaceEngine
from facegate.engine.score import ScoreCalibration, distances
from facegate.engine.types import DetectedFace
from facegate.eval import verification as v
from facegate.eval.lfw_data import Pair, central_box, labelled_face, read_pairs


@dataclass
class DescriptorRun:
    descriptors: dict[str, NDArray[np.float32]]
    relaxed: list[str] = field(default_factory=list)  # found only by the relaxed detector
    fallback: list[str] = field(default_factory=list)  # no face at all: centre box used
    seconds: list[float] = field(default_factory=list)


def facegate_descriptors(
    lfw_dir: Path, paths: list[str], settings: Settings, progress: bool = True
) -> DescriptorRun:
    """Descriptors of the labelled face of each image, cached per pipeline configuration."""
    cache = _cache_path(settings)
    return cached_run(
        cache, paths, lambda: _compute_descriptors(lfw_dir, paths, settings, progress)
    )


def cached_run(
    cache: Path, paths: list[str], compute: Callable[[], DescriptorRun]
) -> DescriptorRun:
    """A descriptor run from its cache file when that covers every path, else computed and saved."""
    if cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            cached = dict(zip(stored["paths"].tolist(), stored["descriptors"], strict=True))
            if all(p in cached for p in paths):
                print(f"  (descriptors and timings from the cache {cache})")
                return DescriptorRun(
                    {p: cached[p] for p in paths},
                    [p for p in stored["relaxed"].tolist() if p in paths],
                    [p for p in stored["fallback"].tolist() if p in paths],
                    stored["seconds"].tolist(),
                )
    run = compute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        paths=np.array(list(run.descriptors)),
        descriptors=np.stack(list(run.descriptors.values())),
        relaxed=np.array(run.relaxed, dtype=str),
        fallback=np.array(run.fallback, dtype=str),
        seconds=np.array(run.seconds),
    )
    return run


def _cache_path(settings: Settings) -> Path:
    # Descriptors derived from LFW stay in the data folder, never in the repository.
    name = (
        f"lfw-{settings.embed_backend}-{'flip' if settings.flip_tta else 'plain'}-{ALIGNMENT}.npz"
    )
    return settings.data_dir / "eval-cache" / name


def _compute_descriptors(
    lfw_dir: Path, paths: list[str], settings: Settings, progress: bool
) -> DescriptorRun:
    engine = FaceEngine(settings)
    relaxed_engine = FaceEngine(
        settings.model_copy(update={"min_face_size": 12, "detect_thresholds": (0.5, 0.5, 0.5)})
    )
    engine.warm_up()
    run = DescriptorRun({})
    for index, rel in enumerate(paths):
        start = time.perf_counter()
        image = engine.decode((lfw_dir / rel).read_bytes())
        face = labelled_face(engine.detect(image, quality=False), image.width, image.height)
        if face is None:
            face = labelled_face(
                relaxed_engine.detect(image, quality=False), image.width, image.height
            )
            run.relaxed.append(rel) if face is not None else run.fallback.append(rel)
        if face is None:
            face = DetectedFace(
                central_box(image.width, image.height), 0.0, np.zeros((5, 2), np.float32)
            )
        run.descriptors[rel] = engine.embed(image, [face])[0]
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


def _settings(backend: str, flip: bool) -> Settings:
    return Settings(embed_backend=backend, flip_tta=flip)  # type: ignore[arg-type]


def _unique_paths(pairs: list[Pair]) -> list[str]:
    return sorted({p.first for p in pairs} | {p.second for p in pairs})


def _report(
    label: str,
    scores: NDArray[np.float64],
    pairs: list[Pair],
    fixed: list[float],
    seconds: list[float],
    relaxed: int,
    fallback: int,
) -> None:
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    kfold = v.kfold_accuracy(scores, same, folds)
    tar, _ = v.tar_at_far(scores, same, 0.001)
    print(f"[{label}] pairs: {len(pairs)} ({int(same.sum())} matched), folds: {len(set(folds))}")
    print(
        f"[{label}] {len(set(folds))}-fold accuracy: {100 * kfold.mean:.2f} % "
        f"± {100 * kfold.std:.2f}"
    )
    for threshold in fixed:
        print(
            f"[{label}] accuracy at score {threshold:g}: "
            f"{100 * v.accuracy_at(scores, same, threshold):.2f} %"
        )
    print(f"[{label}] TAR at FAR 0.1 %: {100 * tar:.2f} %")
    print(
        f"[{label}] images with no face from the main detector: {relaxed + fallback} "
        f"({relaxed} found by the relaxed detector, {fallback} scored on the centre box)"
    )
    print(f"[{label}] seconds per image (median): {statistics.median(seconds):.4f}")


def run_lfw(
    data_dir: Path,
    *,
    folds: int = 10,
    limit: int = 0,
    peer: bool = False,
    backend: str = "onnx",
    flip: bool = True,
) -> int:
    lfw_dir = data_dir / "lfw" if (data_dir / "lfw").is_dir() else data_dir
    pairs = [p for p in read_pairs(lfw_dir / "pairs.txt", limit or None) if p.fold < folds]
    paths = _unique_paths(pairs)
    settings = _settings(backend, flip)
    print(f"LFW: {len(pairs)} pairs over {len(paths)} images; backend={backend}, flip={flip}")
    run = facegate_descriptors(lfw_dir, paths, settings)
    engine = FaceEngine(settings)
    scores = engine.calibration.score(pair_distances(pairs, run.descriptors))
    _report("facegate", scores, pairs, [0.4, 0.5], run.seconds, len(run.relaxed), len(run.fallback))
    if run.fallback:
        print(f"[facegate] centre-box images: {', '.join(run.fallback)}")
    if peer:
        from facegate.eval.peer import peer_descriptors

        peer_cache = settings.data_dir / "eval-cache" / "lfw-face_recognition-1.3.0.npz"
        peer_run = cached_run(peer_cache, paths, lambda: peer_descriptors(lfw_dir, paths))
        peer_d = pair_distances(pairs, peer_run.descriptors)
        # face_recognition's own rule: same person when distance <= tolerance (0.6).
        peer_scores = -peer_d
        _report(
            "face_recognition 1.3.0",
            peer_scores,
            pairs,
            [-0.6],
            peer_run.seconds,
            0,
            len(peer_run.fallback),
        )
    return 0


def run_calibrate(data_dir: Path, *, backend: str = "onnx") -> int:
    """Fit the score curve on LFW's DevTrain pairs for both embedding configurations."""
    from facegate.engine.score import CALIBRATION_FILE

    lfw_dir = data_dir / "lfw" if (data_dir / "lfw").is_dir() else data_dir
    pairs = read_pairs(lfw_dir / "pairsDevTrain.txt")
    paths = _unique_paths(pairs)
    target = Path(__file__).resolve().parent.parent / "models" / CALIBRATION_FILE
    for key, flip in (("flip", True), ("plain", False)):
        run = facegate_descriptors(lfw_dir, paths, _settings(backend, flip))
        calibration = fit_calibration(
            pair_distances(pairs, run.descriptors), np.array([p.same for p in pairs]), key
        )
        calibration.save(target, key)
        scores = calibration.score(pair_distances(pairs, run.descriptors))
        same = np.array([p.same for p in pairs])
        print(
            f"[{key}] midpoint {calibration.midpoint:.4f}, slope {calibration.slope:.2f}; "
            f"DevTrain accuracy at 0.4: {100 * v.accuracy_at(scores, same, 0.4):.2f} %, "
            f"at 0.5: {100 * v.accuracy_at(scores, same, 0.5):.2f} %"
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
        midpoint=midpoint, slope=slope, source=f"LFW pairsDevTrain.txt ({len(dist)} pairs), {key}"
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
