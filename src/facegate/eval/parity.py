"""``facegate eval parity``: the ONNX descriptor against dlib's own, face by face, on LFW chips."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from facegate.config import Settings
from facegate.engine import align
from facegate.engine.embed import DlibEmbedder
from facegate.engine.engine import FaceEngine
from facegate.engine.types import DetectedFace
from facegate.engine.zoo import REGISTRY
from facegate.eval.lfw_data import central_box, labelled_face
from facegate.eval.report import record


def run_parity(data_dir: Path, *, faces: int = 500) -> int:
    lfw_dir = data_dir / "lfw" if (data_dir / "lfw").is_dir() else data_dir
    paths = sorted((lfw_dir / "lfw-deepfunneled").glob("*/*.jpg"))
    paths = paths[:: max(1, len(paths) // faces)][:faces]
    engine = FaceEngine(
        Settings(recognizer="dlib", embed_backend="onnx", tta="none", intra_op_threads=1)
    )
    engine.warm_up()
    reference = DlibEmbedder(REGISTRY["dlib"].file(0))
    cosines, onnx_s, dlib_s = [], [], []
    for path in paths:
        image = engine.decode(path.read_bytes())
        face = labelled_face(engine.detect(image, quality=False), image.width, image.height)
        box = face.box if face else central_box(image.width, image.height)
        detected = face or DetectedFace(box, 0.0, np.zeros((5, 2), np.float32))
        # The same chip goes to both networks.
        chip = np.stack(engine.face_chips(image, detected, [align.View(1.0, False)]))
        start = time.perf_counter()
        ours = engine.embed_chips(chip)[0]
        onnx_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        theirs = reference.embed(chip)[0]
        dlib_s.append(time.perf_counter() - start)
        cosines.append(float(ours @ theirs / (np.linalg.norm(ours) * np.linalg.norm(theirs))))
    values = np.array(cosines)
    record(
        "parity: ONNX Runtime vs dlib, same chips",
        faces=len(values),
        cosine_min=float(values.min()),
        cosine_median=float(np.median(values)),
        faces_below_0_9999=int((values < 0.9999).sum()),
        median_seconds_onnx=float(np.median(onnx_s)),
        median_seconds_dlib=float(np.median(dlib_s)),
    )
    print(f"parity on {len(values)} LFW faces (same chips, ONNX Runtime vs dlib):")
    print(
        f"  cosine min {values.min():.7f}, median {np.median(values):.7f}; "
        f"faces below 0.9999: {int((values < 0.9999).sum())}"
    )
    print(
        f"  median per chip: onnx {1000 * np.median(onnx_s):.1f} ms, "
        f"dlib {1000 * np.median(dlib_s):.1f} ms"
    )
    return 0 if values.min() >= 0.9999 else 1
