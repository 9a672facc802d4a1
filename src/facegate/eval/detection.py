"""``facegate eval detect``: face counts on detection/index.csv and the labelled-face recall on LFW.

A labelled LFW face counts as found when a detected box covers the image's centre pixel, the
dataset's own definition of the labelled face.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.engine import FaceEngine
from facegate.eval.report import record

Boxes = list[tuple[float, float, float, float]]


def _facegate_detector(detector: str, **options: float) -> Callable[[bytes], Boxes]:
    engine = FaceEngine(
        Settings(detector=detector, max_image_bytes=50 * 1024 * 1024, **options)  # type: ignore[arg-type]
    )
    engine.warm_up()

    def detect(data: bytes) -> Boxes:
        return [f.box for f in engine.detect(engine.decode(data), quality=False)]

    return detect


SWEEP = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def _yunet_sweep(data_dir: Path, lfw_paths: list[Path]) -> None:
    """YuNet's score threshold: faces on the index's images and LFW recall at each candidate.

    One detection pass at the lowest candidate; each threshold keeps the faces scoring at least
    it (NMS runs at the lowest, so a count can differ by a suppressed duplicate at most).
    """
    engine = FaceEngine(
        Settings(max_image_bytes=50 * 1024 * 1024, yunet_score_threshold=min(SWEEP))
    )
    with (data_dir / "detection" / "index.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    index_faces = []
    for row in rows:
        image = engine.decode((data_dir / row["path"]).read_bytes())
        faces = engine.detect(image, quality=False)
        index_faces.append((int(row["expected_human_faces"]), [f.confidence for f in faces]))
    lfw_scores = []
    for path in lfw_paths:
        image = engine.decode(path.read_bytes())
        faces = engine.detect(image, quality=False)
        centre = [f.confidence for f in faces if _covers_centre([f.box], 250, 250)]
        lfw_scores.append(max(centre, default=0.0))
    print("== YuNet score threshold: what each candidate keeps")
    for threshold in SWEEP:
        exact = sum(
            sum(s >= threshold for s in scores) == expected for expected, scores in index_faces
        )
        false_faces = sum(
            sum(s >= threshold for s in scores) for expected, scores in index_faces if not expected
        )
        recall = np.mean([s >= threshold for s in lfw_scores])
        print(
            f"  {threshold:.2f}: index.csv {exact}/{len(rows)} exact, {false_faces} faces on "
            f"no-face images; LFW labelled face {100 * recall:.2f} %"
        )


def _peer_detector() -> Callable[[bytes], Boxes]:
    import io

    from PIL import Image

    from facegate.eval.peer import load_face_recognition

    face_recognition = load_face_recognition()

    def detect(data: bytes) -> Boxes:
        rgb: NDArray[np.uint8] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return [
            (float(left), float(top), float(right), float(bottom))
            for top, right, bottom, left in face_recognition.face_locations(rgb)
        ]

    return detect


def _covers_centre(boxes: Boxes, width: int, height: int) -> bool:
    cx, cy = width / 2, height / 2
    return any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in boxes)


def _evaluate(
    label: str, detect: Callable[[bytes], Boxes], data_dir: Path, lfw_paths: list[Path]
) -> None:
    print(f"== {label}")
    exact = 0
    with (data_dir / "detection" / "index.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        found = len(detect((data_dir / row["path"]).read_bytes()))
        expected = int(row["expected_human_faces"])
        exact += found == expected
        mark = "ok " if found == expected else "MISS"
        print(f"  {mark} {row['path']}: found {found}, expected {expected}")
    print(f"[{label}] detection/index.csv: {exact}/{len(rows)} images with the expected count")
    record(f"{label} detection/index.csv", images=len(rows), expected_count=exact)
    hits, seconds, missed = 0, [], []
    for index, path in enumerate(lfw_paths):
        start = time.perf_counter()
        boxes = detect(path.read_bytes())
        seconds.append(time.perf_counter() - start)
        if _covers_centre(boxes, 250, 250):
            hits += 1
        else:
            missed.append(path.name)
        if (index + 1) % 2000 == 0:
            print(f"  {label}: {index + 1}/{len(lfw_paths)} LFW images", flush=True)
    share = 100 * hits / max(1, len(lfw_paths))
    print(
        f"[{label}] LFW labelled face found: {hits}/{len(lfw_paths)} = {share:.2f} %; "
        f"median {1000 * statistics.median(seconds):.1f} ms per 250x250 image"
    )
    record(
        f"{label} LFW",
        images=len(lfw_paths),
        labelled_face_found=hits,
        share=hits / max(1, len(lfw_paths)),
        median_seconds=statistics.median(seconds) if seconds else None,
        missed=missed,
    )
    if missed and len(missed) <= 40:
        print(f"[{label}] missed: {', '.join(missed)}")


def run_detect(data_dir: Path, *, limit: int = 0, peer: bool = False) -> int:
    lfw_paths = sorted((data_dir / "lfw" / "lfw-deepfunneled").glob("*/*.jpg"))
    if limit:
        lfw_paths = lfw_paths[:: max(1, len(lfw_paths) // limit)][:limit]
    _yunet_sweep(data_dir, lfw_paths)
    _evaluate("facegate YuNet (default)", _facegate_detector("yunet"), data_dir, lfw_paths)
    _evaluate("facegate MTCNN", _facegate_detector("mtcnn"), data_dir, lfw_paths)
    if peer:
        _evaluate("face_recognition 1.3.0 (HOG)", _peer_detector(), data_dir, lfw_paths)
    return 0
