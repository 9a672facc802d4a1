"""The spoof data sets in ``facedata/`` and a cache of where their faces are.

Four folders are read, each through its own ``labels.csv``:

- ``nuaa_subset``: NUAA Imposter (printed-photo attacks, webcam), with the official split in the
  ``nuaa_split`` column. The split is *session*-disjoint (train: sessions 1-2, test: session 3)
  and a few subject ids appear on both sides, so cross-validation holds out whole sessions
  (:mod:`facegate.spoof.fit`).
- ``celeba_spoof_subset``: CelebA-Spoof live web photos and their re-captures (print, screen,
  cut-out). No subject ids ship with it; :func:`celeba_group` stands in for them.
- ``silent_face_samples`` and ``insightface_samples/rgb_fake.jpg``: single checks, never trained on.

Face detection is the slow part (30-200 ms per image), so the largest face of every image is
cached in a JSON file outside the repository, keyed by path, size and modification time.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.decode import DecodedImage, decode_image
from facegate.engine.engine import FaceEngine
from facegate.engine.types import DetectedFace

NUAA = "nuaa_subset"
CELEBA = "celeba_spoof_subset"
SILENT_FACE = "silent_face_samples"
INSIGHTFACE = "insightface_samples"

# Images here are large photos: the service's request limits do not apply to training data.
DATA_SETTINGS = Settings(max_image_bytes=64 * 1024 * 1024, max_image_pixels=100_000_000)
# A second, more permissive detector for images where the default one finds nothing.
RELAXED = {"min_face_size": 12, "detect_thresholds": (0.5, 0.5, 0.6), "yunet_score_threshold": 0.5}
# Consecutive CelebA file numbers grouped as one cross-validation group (see celeba_group).
CELEBA_BLOCK = 40


@dataclass(frozen=True)
class Sample:
    dataset: str  # folder name under the data directory
    rel: str  # path inside that folder
    path: Path
    fake: bool
    split: str  # "train" / "test" for NUAA, "all" elsewhere
    subject: str  # cross-validation group: the person, or a stand-in for it
    session: str = ""  # recording session (NUAA); "" where unknown

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.rel}"


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "facegate-spoof-cache"


def _rows(folder: Path) -> list[dict[str, str]]:
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} is missing: is {folder.parent} the facedata folder?")
    with labels.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _is_fake(label: str) -> bool:
    if label == "real":
        return False
    if label.startswith("spoof"):
        return True
    raise ValueError(f"unknown label {label!r}")


def nuaa_samples(data_dir: Path) -> list[Sample]:
    folder = data_dir / NUAA
    return [
        Sample(
            NUAA,
            row["path"],
            folder / row["path"],
            _is_fake(row["label"]),
            row["nuaa_split"],
            f"nuaa-{row['subject_id']}",
            nuaa_session(row["path"]),
        )
        for row in _rows(folder)
    ]


def nuaa_session(rel: str) -> str:
    """NUAA names files ID_glasses_position_session_number.jpg."""
    return f"nuaa-s{Path(rel).stem.split('_')[3]}"


def celeba_samples(data_dir: Path) -> list[Sample]:
    folder = data_dir / CELEBA
    return [
        Sample(
            CELEBA,
            row["path"],
            folder / row["path"],
            _is_fake(row["label"]),
            "all",
            celeba_group(row["path"]),
        )
        for row in _rows(folder)
    ]


def celeba_group(rel: str) -> str:
    """A stand-in for the subject: the block of CELEBA_BLOCK consecutive file numbers.

    The files are numbered in CelebA identity order and ``Live/N`` and ``Spoof/N`` show the same
    person (checked once by clustering dlib descriptors: runs of numbers share an identity, and
    only 15 of 395 faces fell outside their identity's main block of 40), so keeping a block
    on one side of a fold keeps nearly every person there.
    """
    number = int(Path(rel).stem)
    return f"celeba-{(number - 1) // CELEBA_BLOCK}"


def check_samples(data_dir: Path) -> list[Sample]:
    """The hand-picked single checks: Silent-Face's three samples and InspireFace's screen photo."""
    folder = data_dir / SILENT_FACE
    samples = [
        Sample(
            SILENT_FACE,
            row["path"],
            folder / row["path"],
            _is_fake(row["label"]),
            "all",
            row["path"],
        )
        for row in _rows(folder)
    ]
    screen = data_dir / INSIGHTFACE / "rgb_fake.jpg"
    samples.append(Sample(INSIGHTFACE, "rgb_fake.jpg", screen, True, "all", "rgb_fake.jpg"))
    return samples


def _face_to_json(face: DetectedFace) -> list[float]:
    return [*face.box, face.confidence, *face.points.reshape(-1).tolist()]


def _face_from_json(values: list[float]) -> DetectedFace:
    x1, y1, x2, y2, confidence = values[:5]
    points = np.asarray(values[5:15], np.float32).reshape(5, 2)
    return DetectedFace((x1, y1, x2, y2), confidence, points)


class FaceCache:
    """The largest face (or none) of each image, persisted as JSON."""

    def __init__(self, cache_dir: Path) -> None:
        # Faces differ by detector: each has its own file.
        self.path = cache_dir / f"faces-{DATA_SETTINGS.detector}.json"
        self._entries: dict[str, dict[str, object]] = (
            json.loads(self.path.read_text()) if self.path.is_file() else {}
        )
        self._engine: FaceEngine | None = None
        self._relaxed: FaceEngine | None = None

    def _stamp(self, sample: Sample) -> str:
        stat = sample.path.stat()
        return f"{stat.st_size}:{int(stat.st_mtime)}"

    def _entry(self, sample: Sample) -> dict[str, object] | None:
        entry = self._entries.get(sample.key)
        return entry if entry is not None and entry.get("stamp") == self._stamp(sample) else None

    def _engines(self) -> tuple[FaceEngine, FaceEngine]:
        if self._engine is None or self._relaxed is None:
            self._engine = FaceEngine(DATA_SETTINGS)
            self._relaxed = FaceEngine(DATA_SETTINGS.model_copy(update=RELAXED))
        return self._engine, self._relaxed

    def face(self, sample: Sample, rgb: NDArray[np.uint8] | None = None) -> DetectedFace | None:
        entry = self._entry(sample)
        if entry is None:
            engine, relaxed = self._engines()
            image = rgb if rgb is not None else load_rgb(sample.path)
            decoded = DecodedImage(image, "JPEG")
            faces = engine.detect(decoded, quality=False) or relaxed.detect(decoded, quality=False)
            entry = {
                "stamp": self._stamp(sample),
                "face": _face_to_json(faces[0]) if faces else None,
            }
            self._entries[sample.key] = entry
        values = entry["face"]
        return _face_from_json(values) if isinstance(values, list) else None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._entries))
        temporary.replace(self.path)


def load_rgb(path: Path) -> NDArray[np.uint8]:
    """Decode exactly as the service does (EXIF orientation applied), without its size limits."""
    return decode_image(
        path.read_bytes(),
        max_bytes=DATA_SETTINGS.max_image_bytes,
        max_pixels=DATA_SETTINGS.max_image_pixels,
    ).rgb


def with_faces(
    samples: Iterable[Sample], cache: FaceCache, progress: str = ""
) -> Iterator[tuple[Sample, NDArray[np.uint8], DetectedFace | None]]:
    """Each sample with its decoded image and largest face, detecting (and caching) as needed."""
    items = list(samples)
    for index, sample in enumerate(items):
        rgb = load_rgb(sample.path)
        yield sample, rgb, cache.face(sample, rgb)
        if progress and (index + 1) % 100 == 0:
            print(f"  {progress}: {index + 1}/{len(items)} images", flush=True)
            cache.save()
    cache.save()
