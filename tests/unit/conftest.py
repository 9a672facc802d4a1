"""Unit-test fixtures: a model-free fake engine, an app on it, keys, and synthetic "faces".

The fake engine keeps the real engine's contract (decoding, errors, largest-first faces, calibrated
scores) but replaces the networks with arithmetic on colours:

- an image is a horizontal strip of square tiles; each non-black tile is one face;
- a tile's red and green channels (in steps of 64) say *who* it is; its blue channel moves the
  descriptor a little along one axis, so two tiles that differ only in blue are similar people
  (blue 0 vs 255 is about as far as two strangers);
- a tile under 50 px has its eyes under 20 px apart: too small to enroll.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image

from facegate.api.app import create_app
from facegate.config import Settings
from facegate.engine.decode import DecodedImage, decode_image
from facegate.engine.openset import ImpostorTail, ParetoTail
from facegate.engine.registry import Recipe
from facegate.engine.score import ScoreCalibration, distances
from facegate.engine.types import DetectedFace, FaceQuality
from facegate.errors import Unavailable
from facegate.service.container import Services

Colour = tuple[int, int, int]


# The fake recogniser's impostor tail: two strangers' tiles are ~0.99 apart, so false matches
# are rare below 0.85 (1 %) and 0.7 (0.1 %), exponentially rarer beyond.
FAKE_TAIL = ImpostorTail(
    body=((0.7, -3.0), (0.85, -2.0), (0.95, -1.0), (1.0, -0.3), (1.2, 0.0)),
    tail=ParetoTail(u=0.7, p_u=1e-3, xi=0.0, scale=0.05),
    genuine=((0.0, 0.0), (0.2, 0.5), (0.4, 0.9), (0.6, 0.99), (0.8, 1.0)),
    source="unit tests",
)


class FakeEngine:
    calibration = ScoreCalibration(midpoint=0.6, slope=25.0, source="unit tests")
    impostor_tail: ImpostorTail | None = FAKE_TAIL
    recipe = Recipe("fake", "1", "tiles", 128, normalized=False)
    tta = "none"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loaded = True
        self.spoof_score: float | None = None  # None: no spoof model, as today
        self.embedded_faces = 0  # how much "inference" ran
        self.embed_calls = 0  # network calls for whole enrollments

    @property
    def ready(self) -> bool:
        return self.loaded

    def warm_up(self) -> None:
        self.loaded = True

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
        size = image.height
        faces = []
        for left in range(0, image.width - size + 1, size):
            tile = image.rgb[:, left : left + size]
            if tile.max() == 0:
                continue
            box = (float(left), 0.0, float(left + size), float(size))
            eyes = 0.4 * size
            points = np.array(
                [
                    [left + 0.3 * size, 0.4 * size],
                    [left + 0.3 * size + eyes, 0.4 * size],
                    [left + 0.5 * size, 0.6 * size],
                    [left + 0.35 * size, 0.8 * size],
                    [left + 0.65 * size, 0.8 * size],
                ],
                np.float32,
            )
            faces.append(
                DetectedFace(
                    box=box,
                    confidence=0.99,
                    points=points,
                    landmarks68=np.tile(points, (14, 1))[:68] if landmarks68 else None,
                    quality=FaceQuality(eyes, 100.0, 0.0, 0.0, float(size)) if quality else None,
                )
            )
        return faces[:1] if largest_only else faces

    def embed(self, image: DecodedImage, faces: Sequence[DetectedFace]) -> NDArray[np.float32]:
        self.embedded_faces += len(faces)
        rows = []
        for face in faces:
            # Boxes are in the upload's coordinates; an enrollment's image may be a crop.
            ox, oy = image.origin
            x1, y1, x2, y2 = (int(v - o) for v, o in zip(face.box, (ox, oy, ox, oy), strict=True))
            red, green, blue = image.rgb[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
            rng = np.random.default_rng(int(red) // 64 * 4 + int(green) // 64 + 1)
            identity = rng.normal(size=128)
            vector = 0.7 * identity / np.linalg.norm(identity)
            vector[0] += 0.8 * blue / 255.0
            rows.append(vector)
        return np.asarray(rows, np.float32).reshape(-1, 128)

    def embed_many(self, items: Sequence[tuple[DecodedImage, DetectedFace]]) -> NDArray[np.float32]:
        self.embed_calls += 1
        rows = [self.embed(image, [face]) for image, face in items]
        return np.concatenate(rows) if rows else np.zeros((0, 128), np.float32)

    def similarities(
        self, query: NDArray[np.float32], gallery: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        return self.calibration.score(distances(query, gallery))

    def spoof_probability(self, image: DecodedImage, face: DetectedFace) -> float:
        if self.spoof_score is None:
            raise Unavailable("spoof detection is not available: no spoof model is installed")
        return self.spoof_score


@dataclass(frozen=True)
class Faces:
    """Synthetic images for the fake engine, and the colours of its people."""

    alice: Colour = (200, 40, 0)
    bob: Colour = (40, 200, 0)
    carol: Colour = (140, 140, 0)
    stranger: Colour = (250, 250, 0)
    nobody: Colour = (0, 0, 0)

    def png(self, *colours: Colour, size: int = 96) -> bytes:
        strip = np.zeros((size, size * len(colours), 3), np.uint8)
        for i, colour in enumerate(colours):
            strip[:, i * size : (i + 1) * size] = colour
        buffer = io.BytesIO()
        Image.fromarray(strip).save(buffer, format="PNG")
        return buffer.getvalue()

    def b64(self, *colours: Colour, size: int = 96) -> str:
        return base64.b64encode(self.png(*colours, size=size)).decode("ascii")


@pytest.fixture
def faces() -> Faces:
    return Faces()


@pytest.fixture
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        max_concurrent_inference=2,
        warm_up_on_start=False,
        log_json=True,
    )


@pytest.fixture
def engine(settings: Settings) -> FakeEngine:
    return FakeEngine(settings)


@pytest.fixture
def app(settings: Settings, engine: FakeEngine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
def services(app: FastAPI) -> Services:
    built: Services = app.state.services
    return built


@dataclass(frozen=True)
class Tenants:
    alice: dict[str, str]
    bob: dict[str, str]


@pytest.fixture
def tenants(services: Services) -> Tenants:
    """Two API keys, as x-api-key headers."""
    return Tenants(
        alice={"x-api-key": services.keys.create("alice").secret},
        bob={"x-api-key": services.keys.create("bob").secret},
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client
