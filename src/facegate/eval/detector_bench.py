"""``facegate bench DATA --detector``: what each of MTCNN's speed-ups buys, measured one at a time.

- The PReLU form: every network with ONNX's PRelu node against the shipped form, on the same
  inputs, alternating; the outputs must be identical.
- The batch size of the R-Net and O-Net stages, at the crop counts of a 640x480 group photo.
- The coarse-to-fine search for the largest face against detecting every face, on LFW images:
  time and agreement of the box.
- One or two intra-op threads, with ONNX Runtime's idle threads spinning or not.

Medians, single-threaded except where threads are the question. No peer: these compare
facegate with itself.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine import mtcnn_graphs
from facegate.engine.engine import FaceEngine
from facegate.engine.models import cpu_session

NETWORKS: dict[str, Callable[[bool], onnx.ModelProto]] = {
    "pnet": mtcnn_graphs.build_pnet,
    "rnet": mtcnn_graphs.build_rnet,
    "onet": mtcnn_graphs.build_onet,
}
# Inputs of the sizes MTCNN sees: P-Net's largest pyramid levels of a 250x250 and a 640x480 image,
# R-Net and O-Net crop counts of one LFW face and of the 640x480 group photo.
PRELU_INPUTS = [
    ("pnet", (1, 3, 150, 150)),
    ("pnet", (1, 3, 288, 384)),
    ("rnet", (16, 3, 24, 24)),
    ("onet", (6, 3, 48, 48)),
]
BATCH_INPUTS = [("rnet", 465, 24), ("onet", 46, 48)]
BATCH_SIZES = (1, 8, 16, 64, 0)  # 0: all crops in one call


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return cpu_session(model.SerializeToString(), 1)


def _medians_ms(runs: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function, the functions alternating run by run."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        fn()
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in samples.items()}


def _prelu_forms(repeats: int) -> None:
    print("PReLU: ONNX's PRelu node vs the shipped form (relu(x) - a*relu(-x), 1x1 depthwise)")
    rng = np.random.default_rng(0)
    for name, shape in PRELU_INPUTS:
        feed = {"image": rng.standard_normal(shape).astype(np.float32)}
        reference = _session(NETWORKS[name](True))
        shipped = _session(NETWORKS[name](False))
        difference = max(
            float(np.abs(a - b).max())
            for a, b in zip(reference.run(None, feed), shipped.run(None, feed), strict=True)
        )
        ms = _medians_ms(
            {"prelu": _runner(reference, feed), "ours": _runner(shipped, feed)}, repeats
        )
        print(
            f"  {name} {'x'.join(map(str, shape)):<14} PRelu {ms['prelu']:7.2f} ms   "
            f"shipped {ms['ours']:7.2f} ms   {ms['prelu'] / ms['ours']:4.2f}x   "
            f"max |difference| {difference:.1e}"
        )


def _runner(
    session: ort.InferenceSession, feed: dict[str, NDArray[np.float32]], batch: int = 0
) -> Callable[[], None]:
    """Runs the session over the feed's crops, ``batch`` at a time (0: all in one call)."""
    crops = feed["image"]
    step = batch or len(crops)

    def run() -> None:
        for start in range(0, len(crops), step):
            session.run(None, {"image": crops[start : start + step]})

    return run


def _batch_sizes(repeats: int) -> None:
    print("R-Net / O-Net batch size (the detector uses CASCADE_BATCH)")
    rng = np.random.default_rng(1)
    for name, count, size in BATCH_INPUTS:
        session = _session(NETWORKS[name](False))
        feed = {"image": rng.standard_normal((count, 3, size, size)).astype(np.float32)}
        runs = {str(batch or "all"): _runner(session, feed, batch) for batch in BATCH_SIZES}
        ms = _medians_ms(runs, repeats)
        figures = "   ".join(f"{batch}: {value:6.1f} ms" for batch, value in ms.items())
        print(f"  {name} {count} crops   {figures}")


def lfw_images(data_dir: Path) -> list[Path]:
    """LFW's images, sorted; SystemExit with the reason when the data folder has none."""
    paths = sorted((data_dir / "lfw" / "lfw-deepfunneled").glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"{data_dir}: no LFW images under lfw/lfw-deepfunneled/")
    return paths


def _largest_face(data_dir: Path, images: int) -> None:
    paths = lfw_images(data_dir)
    paths = paths[:: max(1, len(paths) // images)][:images]
    engine = FaceEngine(Settings(intra_op_threads=1, detector="mtcnn", recognizer="dlib"))
    engine.warm_up()
    every_face: list[float] = []
    largest_only: list[float] = []
    same = 0
    worst = 0.0
    for path in paths:
        image = engine.decode(path.read_bytes())
        start = time.perf_counter()
        everyone = engine.detect(image, quality=False)
        middle = time.perf_counter()
        largest = engine.detect(image, quality=False, largest_only=True)
        every_face.append(middle - start)
        largest_only.append(time.perf_counter() - middle)
        if everyone and largest:
            shift = float(np.abs(np.subtract(everyone[0].box, largest[0].box)).max())
            same += shift < 1e-3
            worst = max(worst, shift)
        else:
            same += not everyone and not largest
    print(f"Largest face only, {len(paths)} LFW images (evenly spaced over the sorted list)")
    print(
        f"  every face, then the first: median {1000 * statistics.median(every_face):.1f} ms   "
        f"coarse-to-fine: median {1000 * statistics.median(largest_only):.1f} ms   "
        f"same box: {same}/{len(paths)} (largest difference {worst:.1f} px)"
    )


# Run in a fresh process per configuration: thread pools of earlier sessions would interfere.
_THREADS_CHILD = """
import statistics, sys, time
import numpy as np
from facegate.config import Settings
from facegate.engine import align, mtcnn_graphs
from facegate.engine.decode import decode_image
from facegate.engine.detect import DetectorConfig, MTCNNDetector
from facegate.engine.embed import OnnxEmbedder
from facegate.engine.models import cpu_session
from facegate.engine.zoo import REGISTRY
from facegate.engine.resnet_onnx import ensure_resnet_onnx

threads, spin, repeats, path = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
def session(model):
    return cpu_session(model, threads, spin=spin)
detector = MTCNNDetector(
    *(session(build().SerializeToString()) for build in
      (mtcnn_graphs.build_pnet, mtcnn_graphs.build_rnet, mtcnn_graphs.build_onet)),
    DetectorConfig(),
)
resnet = ensure_resnet_onnx(REGISTRY["dlib"].file(0), Settings().model_cache_dir)
embedder = OnnxEmbedder(session(resnet.read_bytes()))
import dlib
predictor = dlib.shape_predictor(str(REGISTRY["dlib"].file(1)))
rgb = decode_image(open(path, "rb").read(), max_bytes=1 << 26, max_pixels=1 << 26).rgb
face = detector.detect(rgb)[0]
chips = np.stack(align.face_chips(rgb, predictor, face.box) * 6)
figures = []
def whole_path():
    largest = detector.detect(rgb, largest_only=True)[0]
    return embedder.embed(np.stack(align.face_chips(rgb, predictor, largest.box)))
for fn in (lambda: detector.detect(rgb), lambda: detector.detect(rgb, largest_only=True),
           lambda: embedder.embed(chips[:1]), lambda: embedder.embed(chips), whole_path):
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); samples.append(time.perf_counter() - start)
    figures.append(1000 * statistics.median(samples))
print(" ".join(f"{f:.1f}" for f in figures))
"""
THREAD_CONFIGS = ((1, False), (2, True), (2, False))


def _threads(data_dir: Path, repeats: int) -> None:
    image = lfw_images(data_dir)[0]
    print(f"Intra-op threads, spinning on or off, one process each ({image.name})")
    for threads, spin in THREAD_CONFIGS:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _THREADS_CHILD,
                str(threads),
                str(int(spin)),
                str(repeats),
                str(image),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        every, largest, one, six, whole = out.stdout.split()
        label = f"{threads} thread{'s' if threads > 1 else ''}, spinning {'on' if spin else 'off'}"
        print(
            f"  {label:<26} detect every face {every:>6} ms   largest face {largest:>6} ms   "
            f"ResNet 1 chip {one:>5} ms   6 chips {six:>6} ms   "
            f"largest face + chip + ResNet {whole:>6} ms"
        )


def run_detector_bench(data_dir: Path, *, repeats: int = 20, images: int = 300) -> int:
    lfw_images(data_dir)  # refuse a folder without LFW before minutes of measuring
    print(
        f"facegate bench --detector: medians of {repeats} runs (alternating where two things are "
        "compared), one thread except where threads are the question\n"
    )
    _prelu_forms(repeats)
    print()
    _batch_sizes(repeats)
    print()
    _largest_face(data_dir, images)
    print()
    _threads(data_dir, repeats)
    return 0
