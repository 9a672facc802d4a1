"""FaceEngine: the one object the service layer talks to.

The settings name the detector and the recogniser; both, the 68-point predictor and the spoof
model come from the registry's cache (``engine/registry.py``, entries in ``engine/zoo.py``):
loaded on first use (or by :meth:`FaceEngine.warm_up`), each once under its own lock. Afterwards
every method may be called from many threads at the same time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, cast

import numpy as np
from numpy.typing import NDArray

from facegate.config import TTA, Settings
from facegate.engine import align
from facegate.engine.decode import DecodedImage, decode_image
from facegate.engine.models import intra_op_threads
from facegate.engine.openset import ImpostorTail, load_impostor_tail
from facegate.engine.quality import estimate_quality
from facegate.engine.recognizers import Recognizer, unit_rows
from facegate.engine.registry import LoadContext, ModelCache, Recipe
from facegate.engine.score import ScoreCalibration, distances, load_calibration
from facegate.engine.types import DetectedFace, FaceQuality
from facegate.engine.zoo import REGISTRY
from facegate.errors import NoFaceFound

LANDMARKS_MODEL = "dlib-shape68"
SPOOF_MODEL = "facegate-spoof"


class SpoofDetector(Protocol):
    def probability_fake(self, rgb: NDArray[np.uint8], face: DetectedFace) -> float: ...


class Detector(Protocol):
    def detect(
        self,
        rgb: NDArray[np.uint8],
        min_face_size: int | None = None,
        *,
        largest_only: bool = False,
    ) -> list[DetectedFace]: ...


@dataclass(frozen=True)
class FaceEmbedding:
    face: DetectedFace
    descriptor: NDArray[np.float32]  # the recipe's dimension


class FaceEngine:
    """Detector, recogniser, landmarks and spoof model as the settings name them (registry
    entries, engine/zoo.py), each loaded on first use once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        context = LoadContext(settings, intra_op_threads(settings), settings.model_cache_dir)
        self._models = ModelCache(REGISTRY, context)
        spec = REGISTRY[settings.recognizer]
        assert spec.recipe is not None
        self.recipe: Recipe = spec.recipe
        self.tta: TTA = settings.tta or cast(TTA, spec.default_tta)
        self.calibration: ScoreCalibration = load_calibration(self.recipe.key, self.tta)
        self.impostor_tail: ImpostorTail | None = load_impostor_tail(self.recipe.key, self.tta)

    # Loading -----------------------------------------------------------------------------
    def _warm_models(self) -> tuple[str, ...]:
        return (self.settings.detector, self.settings.recognizer, LANDMARKS_MODEL)

    def warm_up(self) -> None:
        for name in self._warm_models():
            self._models.get(name)

    def preload(self) -> None:
        """Load the warm models whose loading holds the GIL (``ModelSpec.holds_gil``), so that
        a server can do it before it listens; :meth:`warm_up` then loads the rest while it
        serves (ONNX Runtime's sessions mostly release the GIL while they are built)."""
        for name in self._warm_models():
            if self._models.spec(name).holds_gil:
                self._models.get(name)

    @property
    def ready(self) -> bool:
        return all(self._models.loaded(name) for name in self._warm_models())

    @property
    def detector(self) -> Detector:
        return cast(Detector, self._models.get(self.settings.detector))

    @property
    def recognizer(self) -> Recognizer:
        return cast(Recognizer, self._models.get(self.settings.recognizer))

    def _spoof(self) -> SpoofDetector:
        return cast(SpoofDetector, self._models.get(SPOOF_MODEL))

    # Pipeline ----------------------------------------------------------------------------
    def decode(self, data: bytes) -> DecodedImage:
        # A JPEG far larger than the detector's working size is decoded at reduced resolution:
        # detection would shrink it anyway, and alignment's chips are 112-150 px.
        return decode_image(
            data,
            max_bytes=self.settings.max_image_bytes,
            max_pixels=self.settings.max_image_pixels,
            target_side=self.settings.detect_max_side,
            max_expansion=self.settings.max_image_expansion,
            expansion_floor_bytes=self.settings.image_expansion_floor_bytes,
        )

    def detect(
        self,
        image: DecodedImage,
        *,
        landmarks68: bool = False,
        quality: bool = True,
        largest_only: bool = False,
    ) -> list[DetectedFace]:
        """All faces (or only the one wanted), largest first (``types.by_prominence``), with
        quality figures and, on request, 68 points.

        With MTCNN ``largest_only`` is faster than taking the first of all faces (it searches
        coarse-to-fine); YuNet finds every size in one pass, so it costs the same.
        """
        # The detector works in decoded pixels; faces leave in the upload's coordinates.
        smallest = math.ceil(self.settings.min_face_size / image.scale)
        faces = self.detector.detect(image.rgb, smallest, largest_only=largest_only)
        if quality:
            faces = [
                replace(f, quality=_scaled(estimate_quality(image.rgb, f.box, f.points), image))
                for f in faces
            ]
        if landmarks68:
            predictor = self._models.get(LANDMARKS_MODEL)
            faces = [
                replace(f, landmarks68=align.landmarks68(image.rgb, predictor, f.box))
                for f in faces
            ]
        return [_mapped(f, image.to_sent) for f in faces]

    def embed(self, image: DecodedImage, faces: Sequence[DetectedFace]) -> NDArray[np.float32]:
        """One descriptor per face (rows in the order given), all faces in one network call."""
        return self.embed_many([(image, face) for face in faces])

    def embed_many(self, items: Sequence[tuple[DecodedImage, DetectedFace]]) -> NDArray[np.float32]:
        """Faces from several images (e.g. one enrollment's) embedded in a single network call.

        Each face's descriptor is the mean over the views of the configured test-time
        augmentation (``Settings.tta``).
        """
        per_view = self.embed_views(items, align.views_for(self.tta))
        mean: NDArray[np.float32] = per_view.mean(axis=1, dtype=np.float32)
        return unit_rows(mean) if self.recipe.normalized else mean

    def embed_views(
        self, items: Sequence[tuple[DecodedImage, DetectedFace]], views: Sequence[align.View]
    ) -> NDArray[np.float32]:
        """Descriptors of every view of every face: shape (faces, views, dimension)."""
        if not items:
            return np.zeros((0, len(views), self.recipe.dimension), np.float32)
        chips = np.stack([c for image, f in items for c in self.face_chips(image, f, views)])
        return self.embed_chips(chips).reshape(len(items), len(views), -1)

    def face_chips(
        self, image: DecodedImage, face: DetectedFace, views: Sequence[align.View]
    ) -> list[NDArray[np.uint8]]:
        """The aligned chips the recogniser's network sees, one per view."""
        return self.recognizer.chips(image.rgb, _mapped(face, image.to_pixels), views)

    def embed_chips(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """The network's descriptors of N chips, one call."""
        return self.recognizer.embed(chips)

    def largest_face(self, image: DecodedImage) -> FaceEmbedding:
        """The largest face and its descriptor (no quality figures: nothing here gates on them)."""
        faces = self.detect(image, largest_only=True, quality=False)
        if not faces:
            raise NoFaceFound("no face found in the image")
        descriptor = self.embed(image, faces[:1])[0]
        return FaceEmbedding(face=faces[0], descriptor=descriptor)

    def spoof_probability(self, image: DecodedImage, face: DetectedFace) -> float:
        """Probability in [0, 1] that the face is a presentation attack (print, screen, mask)."""
        return float(self._spoof().probability_fake(image.rgb, _mapped(face, image.to_pixels)))

    # Scores ------------------------------------------------------------------------------
    def similarity(self, a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
        return float(self.calibration.score(distances(a, b[np.newaxis, :])[0]))

    def similarities(
        self, query: NDArray[np.float32], gallery: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        return self.calibration.score(distances(query, gallery))


def _mapped(
    face: DetectedFace, transform: Callable[[NDArray[np.float32]], NDArray[np.float32]]
) -> DetectedFace:
    """The face with its box and points moved by ``transform`` (decoded pixels ↔ upload)."""
    x1, y1, x2, y2 = face.box
    corners = transform(np.array([[x1, y1], [x2, y2]], np.float32))
    return replace(
        face,
        box=(
            float(corners[0, 0]),
            float(corners[0, 1]),
            float(corners[1, 0]),
            float(corners[1, 1]),
        ),
        points=transform(face.points),
        landmarks68=None if face.landmarks68 is None else transform(face.landmarks68),
    )


def _scaled(quality: FaceQuality, image: DecodedImage) -> FaceQuality:
    """Sizes measured in decoded pixels, given in the upload's (sharpness is scale-free)."""
    if image.scale == 1.0:
        return quality
    return replace(
        quality,
        eye_distance_px=quality.eye_distance_px * image.scale,
        face_size_px=quality.face_size_px * image.scale,
    )
