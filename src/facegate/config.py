"""Settings: the single place where the environment is read.

Build one :class:`Settings` at start-up (``Settings()`` reads ``FACEGATE_*`` variables and an
optional ``.env``) and pass it down; nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TTA = Literal["none", "flip", "multi"]

EmbedBackend = Literal["onnx", "dlib"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACEGATE_", env_file=".env", extra="ignore")

    # Where the embedded store, cached ONNX graphs and (optionally) images live.
    data_dir: Path = Path("data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite (WAL) in data_dir. PostgreSQL: "
        "postgresql+psycopg://user:pass@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8085

    # Input limits: refused before any expensive decoding.
    max_image_bytes: int = 2 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_images_per_enrollment: int = 10

    # Detection.
    min_face_size: int = 20
    detect_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)

    # Recognition.
    embed_backend: EmbedBackend = "onnx"
    # Test-time augmentation: "multi" (6 views: 3 zooms x mirror; most accurate), "flip"
    # (2 views), "none" (fastest). Each has its own shipped score calibration.
    tta: TTA = "multi"
    match_threshold: float = 0.5
    identify_threshold: float = 0.5
    unknowns_identify_threshold: float = 0.6

    # Quality gates for enrollment images.
    min_enroll_eye_distance: float = 20.0
    max_enroll_abs_yaw: float = 45.0

    # Spoof detection decision point on the calibrated probability of "fake".
    spoof_threshold: float = 0.5

    # Threads: total intra-op threads per model session; 0 lets the engine pick (cores / workers).
    intra_op_threads: int = 0
    max_concurrent_inference: int = 0

    # Operations.
    rate_limit_per_minute: int = 0
    store_images: bool = False
    log_json: bool = True

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'facegate.db').resolve()}"

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"

    # API
    # Largest accepted request body; 0 derives it from the image limits (ten base64 images).
    max_request_bytes: int = 0
    # Requests allowed to wait for an inference worker before new ones get 503.
    inference_queue_limit: int = 32
    # Collections with ``unknowns: true`` also need this lead of the best score over the next.
    unknowns_identify_margin: float = 0.1
    # Trained collections whose search index is kept in memory.
    index_cache_collections: int = 64
    # Load the models at start-up (readyz answers 503 until then) instead of on first use.
    warm_up_on_start: bool = True
    # Largest top_k accepted by /v1/identify.
    max_top_k: int = 100

    # Command-line client (facegate detect, enroll, match, identify, collections): the server
    # it talks to and the key it sends, unless --url / --key say otherwise. Read here, like every
    # other setting, so FACEGATE_API_URL / FACEGATE_API_KEY (or .env) work without flags.
    api_url: str = "http://127.0.0.1:8085"
    # A SecretStr so that printing the settings never shows it.
    api_key: SecretStr | None = None
