"""The peer: ``face_recognition`` 1.3.0 (dlib HOG detector + the same dlib ResNet), as users run it.

Imported only by evaluation and benchmark commands; it is a measurement reference, not a
dependency of the service.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from facegate.engine.types import DetectedFace
from facegate.eval.lfw import DescriptorRun
from facegate.eval.lfw_data import central_box, labelled_face


def load_face_recognition() -> Any:
    """The face_recognition module, imported without its side effect on this process.

    Importing it sets Pillow's process-wide ``LOAD_TRUNCATED_IMAGES``, which would make
    facegate's own decoder accept truncated files in the same process; the setting is put back.
    """
    from PIL import ImageFile

    strict = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import face_recognition
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SystemExit(
            "the peer needs face_recognition 1.3.0: "
            "pip install --no-deps face_recognition==1.3.0 (make peer)"
        ) from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = strict
    return face_recognition


def peer_descriptors(lfw_dir: Path, paths: list[str], progress: bool = True) -> DescriptorRun:
    fr = load_face_recognition()
    run = DescriptorRun({})
    for index, rel in enumerate(paths):
        start = time.perf_counter()
        image = fr.load_image_file(str(lfw_dir / rel))
        height, width = image.shape[:2]
        locations = fr.face_locations(image)  # HOG, upsample 1: the library's defaults
        faces = [
            DetectedFace(
                (float(left), float(top), float(right), float(bottom)),
                1.0,
                np.zeros((5, 2), np.float32),
            )
            for top, right, bottom, left in locations
        ]
        face = labelled_face(faces, width, height)
        if face is None:
            run.fallback.append(rel)
            face = DetectedFace(central_box(width, height), 0.0, np.zeros((5, 2), np.float32))
        x1, y1, x2, y2 = (round(c) for c in face.box)
        encoding = fr.face_encodings(image, known_face_locations=[(y1, x2, y2, x1)])[0]
        run.descriptors[rel] = np.asarray(encoding, dtype=np.float32)
        run.seconds.append(time.perf_counter() - start)
        if progress and (index + 1) % 500 == 0:
            print(f"  face_recognition: {index + 1}/{len(paths)} images", flush=True)
    return run
