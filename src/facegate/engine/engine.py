"""FaceEngine: the one object the service layer talks to.

Models load lazily on first use (or all at once with :meth:`FaceEngine.warm_up`), once, under a
lock; afterwards every method may be called from many threads at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import dlib
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine import align, mtcnn_graphs
from facegate.engine.decode import DecodedImage, decode_image
from facegate.engine.detect import DetectorConfig, MTCNNDetector
from facegate.engine.embed import DlibEmbedder, Embedder, OnnxEmbedder
from facegate.engine.models import Lazy, cpu_session, dlib_model_path, intra_op_threads
from facegate.engine.quality import estimate_quality
from facegate.engine.score import ScoreCalibration, distances, load_calibration
from facegate.engine.types import DetectedFace
from facegate.errors import NoFaceFound, Unavailable


class SpoofDetector(Protocol):
    def probability_fake(self, rgb: NDArray[np.uint8], face: DetectedFace) -> float: ...


@dataclass(frozen=True)
class FaceEmbedding:
    face: DetectedFace
    descriptor: NDArray[np.float32]  # 128


class FaceEngine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._threads = intra_op_threads(settings)
        self._detector = Lazy(self._load_detector)
        self._shape5 = Lazy(lambda: dlib.shape_predictor(str(dlib_model_path("shape5"))))
        self._shape68 = Lazy(lambda: dlib.shape_predictor(str(dlib_model_path("shape68"))))
        self._embedder: Lazy[Embedder] = Lazy(self._load_embedder)
        self._spoof: Lazy[SpoofDetector] = Lazy(self._load_spoof)
        self.calibration: ScoreCalibration = load_calibration(settings.tta)

    # Loading -----------------------------------------------------------------------------
    def warm_up(self) -> None:
        self._detector.get()
        self._shape5.get()
        self._shape68.get()
        self._embedder.get()

    @property
    def ready(self) -> bool:
        return all(m.loaded for m in (self._detector, self._shape5, self._shape68, self._embedder))

    def _session(self, model_bytes: bytes) -> ort.InferenceSession:
        return cpu_session(model_bytes, self._threads)

    def _load_detector(self) -> MTCNNDetector:
        return MTCNNDetector(
            self._session(mtcnn_graphs.build_pnet().SerializeToString()),
            self._session(mtcnn_graphs.build_rnet().SerializeToString()),
            self._session(mtcnn_graphs.build_onet().SerializeToString()),
            DetectorConfig(self.settings.min_face_size, self.settings.detect_thresholds),
        )

    def _load_embedder(self) -> Embedder:
        model_path = dlib_model_path("resnet")
        if self.settings.embed_backend == "dlib":
            return DlibEmbedder(model_path)
        from facegate.engine.resnet_onnx import ensure_resnet_onnx

        onnx_path = ensure_resnet_onnx(model_path, self.settings.model_cache_dir)
        return OnnxEmbedder(self._session(onnx_path.read_bytes()))

    def _load_spoof(self) -> SpoofDetector:
        try:
            from facegate.engine.spoof import load_spoof_detector
        except ImportError as exc:
            raise Unavailable(
                "spoof detection is not available: no spoof model is installed"
            ) from exc
        return load_spoof_detector(self.settings)

    # Pipeline ----------------------------------------------------------------------------
    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(
            data, max_bytes=self.settings.max_image_bytes, max_pixels=self.settings.max_image_pixels
        )

    def detect(
        self,
        image: DecodedImage,
        *,
        landmarks68: bool = False,
        quality: bool = True,
        largest_only: bool = False,
    ) -> list[DetectedFace]:
        """All faces (or only the largest), largest first, with quality and, on request, 68 points.

        ``largest_only`` is faster than taking the first of all faces: the detector searches
        coarse-to-fine and stops when it has found a large face.
        """
        faces = self._detector.get().detect(image.rgb, largest_only=largest_only)
        if quality:
            faces = [
                replace(f, quality=estimate_quality(image.rgb, f.box, f.points)) for f in faces
            ]
        if landmarks68:
            predictor = self._shape68.get()
            faces = [
                replace(f, landmarks68=align.landmarks68(image.rgb, predictor, f.box))
                for f in faces
            ]
        return faces

    def embed(self, image: DecodedImage, faces: Sequence[DetectedFace]) -> NDArray[np.float32]:
        """One descriptor per face (rows in the order given), all faces in one network call."""
        return self.embed_many([(image, face) for face in faces])

    def embed_many(self, items: Sequence[tuple[DecodedImage, DetectedFace]]) -> NDArray[np.float32]:
        """Faces from several images (e.g. one enrollment's) embedded in a single network call.

        Each face's descriptor is the mean over the views of the configured test-time
        augmentation (``Settings.tta``).
        """
        per_view = self.embed_views(items, align.views_for(self.settings.tta))
        mean: NDArray[np.float32] = per_view.mean(axis=1, dtype=np.float32)
        return mean

    def embed_views(
        self, items: Sequence[tuple[DecodedImage, DetectedFace]], views: Sequence[align.View]
    ) -> NDArray[np.float32]:
        """Descriptors of every view of every face: shape (faces, views, 128)."""
        if not items:
            return np.zeros((0, len(views), 128), np.float32)
        chips = np.stack([c for image, f in items for c in self.face_chips(image, f, views)])
        return self.embed_chips(chips).reshape(len(items), len(views), -1)

    def face_chips(
        self, image: DecodedImage, face: DetectedFace, views: Sequence[align.View]
    ) -> list[NDArray[np.uint8]]:
        """The aligned 150x150 chips the descriptor network sees, one per view."""
        return align.face_chips(image.rgb, self._shape5.get(), face.box, views)

    def embed_chips(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Raw network descriptors of N x 150 x 150 x 3 chips, one call."""
        return self._embedder.get().embed(chips)

    def largest_face(self, image: DecodedImage) -> FaceEmbedding:
        """The largest face and its descriptor (no quality figures: nothing here gates on them)."""
        faces = self.detect(image, largest_only=True, quality=False)
        if not faces:
            raise NoFaceFound("no face found in the image")
        descriptor = self.embed(image, faces[:1])[0]
        return FaceEmbedding(face=faces[0], descriptor=descriptor)

    def embed_all(self, image: DecodedImage) -> list[FaceEmbedding]:
        faces = self.detect(image)
        descriptors = self.embed(image, faces)
        return [FaceEmbedding(f, d) for f, d in zip(faces, descriptors, strict=True)]

    def spoof_probability(self, image: DecodedImage, face: DetectedFace) -> float:
        """Probability in [0, 1] that the face is a presentation attack (print, screen, mask)."""
        return float(self._spoof.get().probability_fake(image.rgb, face))

    # Scores ------------------------------------------------------------------------------
    def similarity(self, a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
        return float(self.calibration.score(distances(a, b[np.newaxis, :])[0]))

    def similarities(
        self, query: NDArray[np.float32], gallery: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        return self.calibration.score(distances(query, gallery))
