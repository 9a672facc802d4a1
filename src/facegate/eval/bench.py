"""``facegate bench``: speed of facegate against face_recognition 1.3.0, in one run, same images.

Each timed step alternates between the two systems (A, B, A, B, ...) so that the load of a shared
machine falls on both alike; the figures are medians, and the ratio is peer time / facegate time.
facegate runs single-threaded here (one intra-op thread), like dlib, at its defaults (YuNet +
SFace) and, for reference, with the previous release's MTCNN + dlib ResNet.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.decode import DecodedImage
from facegate.engine.engine import FaceEngine


def _median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def _alternate(
    ours: Callable[[], object], peer: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    ours(), peer()  # warm caches and lazy loads outside the timing
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(repeats):
        for fn, out in ((ours, mine), (peer, theirs)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return mine, theirs


def _line(label: str, mine: list[float], theirs: list[float]) -> None:
    a, b = _median_ms(mine), _median_ms(theirs)
    print(f"{label:<52} facegate {a:8.1f} ms   face_recognition {b:8.1f} ms   ratio {b / a:5.1f}x")


def _group_photo_640x480(data_dir: Path) -> NDArray[np.uint8]:
    from PIL import Image

    image = Image.open(data_dir / "insightface_samples" / "t1.jpg").convert("RGB")
    return np.asarray(image.resize((640, 480), Image.Resampling.LANCZOS), dtype=np.uint8)


def resident_memory_mb(recognizer: str) -> tuple[float, float]:
    """Resident and peak memory (MB) of a fresh process once every model is loaded and used.

    Measured in a child process so nothing of this one's counts.
    """
    code = (
        "import numpy as np\n"
        "from facegate.config import Settings\n"
        "from facegate.engine.engine import FaceEngine\n"
        f"e = FaceEngine(Settings(recognizer={recognizer!r}, intra_op_threads=1)); e.warm_up()\n"
        "side = 112 if e.recipe.recognizer == 'sface' else 150\n"
        "e.embed_chips(np.zeros((1, side, side, 3), np.uint8))\n"
        # VmHWM, not getrusage's ru_maxrss: the latter survives exec, so it would report the
        # forking parent's peak (with every engine of the bench loaded) instead of the child's.
        "status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        "kb = lambda k: int(status[k].split()[0])\n"
        "print(kb('VmRSS') / 1024, kb('VmHWM') / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    resident, peak = out.stdout.strip().splitlines()[-1].split()
    return float(resident), float(peak)


def run_bench(data_dir: Path, *, repeats: int = 20) -> int:
    from facegate.eval.peer import load_face_recognition

    face_recognition = load_face_recognition()

    configs = {
        "defaults (yunet + sface, tta=none)": Settings(intra_op_threads=1),
        "yunet + sface, tta=flip": Settings(intra_op_threads=1, tta="flip"),
        "mtcnn + dlib, tta=none": Settings(
            intra_op_threads=1, detector="mtcnn", recognizer="dlib", tta="none"
        ),
        "mtcnn + dlib, tta=multi (0.1's default)": Settings(
            intra_op_threads=1, detector="mtcnn", recognizer="dlib", tta="multi"
        ),
    }
    engines = {label: FaceEngine(settings) for label, settings in configs.items()}
    for engine in engines.values():
        engine.warm_up()
    default = engines["defaults (yunet + sface, tta=none)"]
    mtcnn = engines["mtcnn + dlib, tta=none"]
    print(f"facegate bench: {repeats} alternating repeats, single-threaded, medians\n")

    group = _group_photo_640x480(data_dir)
    for name, engine in (("yunet, the default", default), ("mtcnn", mtcnn)):
        _line(
            f"detect, 640x480 group photo (6 faces), {name}",
            *_alternate(
                lambda engine=engine: engine.detect(_decoded(group), quality=False),  # type: ignore[misc]
                lambda: face_recognition.face_locations(group),
                repeats,
            ),
        )
    print(
        f"{'':<52} faces found: yunet {len(default.detect(_decoded(group)))}, "
        f"mtcnn {len(mtcnn.detect(_decoded(group)))}, "
        f"face_recognition {len(face_recognition.face_locations(group))}"
    )

    lfw_path = data_dir / "lfw" / "lfw-deepfunneled" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    lfw_bytes = lfw_path.read_bytes()
    decoded = default.decode(lfw_bytes)
    peer_face = mtcnn.detect(decoded)[0]
    x1, y1, x2, y2 = (round(c) for c in peer_face.box)
    location = [(y1, x2, y2, x1)]
    for label, engine in engines.items():
        face = engine.detect(decoded)[0]
        _line(
            f"one embedding (align + net), {label}",
            *_alternate(
                lambda engine=engine, face=face: engine.embed(decoded, [face]),  # type: ignore[misc]
                lambda: face_recognition.face_encodings(decoded.rgb, location),
                repeats,
            ),
        )

    peer_reference = face_recognition.face_encodings(decoded.rgb)[0]

    def peer_match() -> float:
        import io

        from PIL import Image

        rgb = np.asarray(Image.open(io.BytesIO(lfw_bytes)).convert("RGB"))
        encodings = face_recognition.face_encodings(rgb)
        return float(face_recognition.face_distance([peer_reference], encodings[0])[0])

    for label, engine in engines.items():
        reference = engine.largest_face(decoded).descriptor

        def ours_match(
            engine: FaceEngine = engine, reference: NDArray[np.float32] = reference
        ) -> float:
            image = engine.decode(lfw_bytes)
            return engine.similarity(engine.largest_face(image).descriptor, reference)

        _line(
            f"whole match path, 250x250 LFW image, {label}",
            *_alternate(ours_match, peer_match, repeats),
        )
    print()
    for recognizer in ("sface", "dlib"):
        resident, peak = resident_memory_mb(recognizer)
        print(
            f"memory with every model loaded ({recognizer}): resident {resident:.0f} MB, "
            f"peak {peak:.0f} MB"
        )
    return 0


def _decoded(rgb: NDArray[np.uint8]) -> DecodedImage:
    return DecodedImage(rgb=rgb, format="RAW")
