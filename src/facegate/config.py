"""Settings: the single place where the environment is read.

Build one :class:`Settings` at start-up (``Settings()`` reads ``FACEGATE_*`` variables and an
optional ``.env``) and pass it down; nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TTA = Literal["none", "flip", "multi"]

EmbedBackend = Literal["onnx", "dlib"]
DetectorName = Literal["yunet", "mtcnn"]
RecognizerName = Literal["sface", "dlib"]


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

    # Input limits: refused before any expensive decoding. 16 MB takes what phones send (a
    # 12 Mpx JPEG is 2-8 MB, a 50 Mpx one ~15 MB). Pixels are counted as decoded (a large JPEG is
    # decoded at 1/2-1/8 size, engine/decode.py), and decoding costs ~7.5 bytes per pixel: 40 Mpx
    # is ~300 MB at most per running request (measured, BENCHMARKS.md).
    max_image_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    # Expansion (engine/decode.py): an image may decode (width x height x bands, read from the
    # header before any pixel is decoded) to image_expansion_floor_bytes, or to
    # max_image_expansion times its bytes if that is more; a JPEG over it is decoded at 1/2-1/8
    # size until it fits, anything else is refused (413 image_too_expansive). Why these values
    # (`facegate bench memory`, BENCHMARKS.md): every image costs a fixed part, detection at up
    # to detect_max_side (~50 MB at 1280 px, ~150 MB at 1920 px) plus decoding; decoding costs
    # ~1.1-2.5 bytes per decoded byte. The floor, 24 MB = 8 Mpx of RGB (a 3264x2448 camera photo
    # whole, a 4000x3000 phone JPEG at its 1/2 draft, any 2560x1440 screenshot), keeps decoding
    # within ~60 MB, below detection's own cost; above it, 3x keeps decoding's memory <= 8x the
    # image's bytes (a PNG photo decodes to ~1.5-3x its file). What it refuses: tiny files of
    # huge flat canvases (issue 12's 131 KB 6300x6300 PNG cost +272 MB) and large lossy WebPs.
    # 0 (the ratio): no check.
    max_image_expansion: float = 3.0
    image_expansion_floor_bytes: int = 24_000_000
    max_images_per_enrollment: int = 10

    # Detection: the model (a registry entry; see engine/zoo.py) and its knobs.
    detector: DetectorName = "yunet"
    min_face_size: int = 20
    # YuNet's score threshold, chosen on detection/index.csv and LFW (BENCHMARKS.md).
    yunet_score_threshold: float = 0.8
    # Photos whose longer side is larger are shrunk to it for detection (points and boxes are
    # mapped back; alignment reads the original pixels): bounds detection's time and memory.
    detect_max_side: int = 1920
    # MTCNN's P-, R- and O-Net thresholds.
    detect_thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)

    # Recognition: the model (a registry entry) and how its descriptors are computed.
    recognizer: RecognizerName = "sface"
    # dlib's ResNet only: "onnx" (converted graph on ONNX Runtime) or "dlib" (the reference).
    embed_backend: EmbedBackend = "onnx"
    # Test-time augmentation: "none" (one pass), "flip" (the chip and its mirror), "multi"
    # (3 zooms x mirror). None takes the recogniser's default (sface: none, dlib: multi). Each
    # recogniser and mode has its own shipped score calibration.
    tta: TTA | None = None
    match_threshold: float = 0.5
    # Identify's threshold only for a recogniser with no impostor-tail model (see the open-set
    # block at the end); with one, the threshold follows from the collection's size.
    identify_threshold: float = 0.5

    # Quality gates for enrollment images.
    min_enroll_eye_distance: float = 20.0
    # Refuses near-profiles only. On LFW View 1 (DevTrain) SFace kept matching faces estimated
    # up to the highest yaws seen (60-79 degrees); the estimate reaches ~70 where the 5 points
    # crowd onto one side of the face (BENCHMARKS.md).
    max_enroll_abs_yaw: float = 70.0

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

    @property
    def index_dir(self) -> Path:
        """Where this machine keeps its approximate indexes, a folder per collection."""
        return self.data_dir / "index"

    # API
    # Largest accepted request body; 0 derives it from the image limits (ten base64 images).
    max_request_bytes: int = 0
    # Requests allowed to wait for an inference worker before new ones get 503.
    inference_queue_limit: int = 32
    # Trained collections whose search index is kept in memory (exact) or mapped (approximate).
    index_cache_collections: int = 64
    # A trained snapshot with fewer embeddings is searched exactly in memory; a larger one
    # through an approximate index (faiss IVF, index/ann.py) that training builds in
    # data_dir/index (BENCHMARKS.md). Reading an exact snapshot into memory costs the first
    # search after a training ~10 ms per 1,000 embeddings here.
    exact_search_limit: int = 20_000
    # PostgreSQL: each machine keeps its own copy of those indexes in its data folder (built by
    # the trainer, or in the background by a machine that lacks one, pgvector answering
    # meanwhile: index/postgres.py). Off: every snapshot is searched by pgvector in the
    # database alone (HNSW; at 10^6 slower and finding fewer true nearest).
    postgres_local_index: bool = True
    # Load the models at start-up (readyz answers 503 until then) instead of on first use.
    warm_up_on_start: bool = True
    # Largest top_k accepted by /v1/identify.
    max_top_k: int = 100

    # Connections and timeouts (api/server.py, api/protocol.py, api/middleware.py). Slow or idle
    # clients must not hold sockets and workers for ever: each phase of a request has a bound.
    # Seconds an idle kept-alive connection waits for its next request (uvicorn's
    # timeout_keep_alive).
    keep_alive_timeout_s: int = 5
    # Seconds within which a request's line and headers must arrive, counted from the connection's
    # opening or, on a kept-alive one, from the next request's first byte; then the connection is
    # closed (with a 408 if part of a request arrived). uvicorn has no such option, so facegate's
    # own HTTP protocol class enforces it. 0: no limit.
    header_timeout_s: float = 10.0
    # Seconds within which the whole request body must arrive once the app starts reading it
    # (408 otherwise; the connection is closed). 0: no limit.
    body_timeout_s: float = 60.0
    # Open connections beyond this are answered 503 (with Retry-After) and closed, those beyond
    # twice this dropped unanswered: keep it under half the process's file-descriptor limit.
    # uvicorn's own limit_concurrency is not used: its 503 is plain text, outside the envelope,
    # and it still accepts every connection. 0: no limit.
    max_connections: int = 512
    # Connections the kernel queues for accept() (uvicorn's backlog).
    backlog: int = 2048

    # Command-line client (facegate detect, enroll, match, identify, collections): the server
    # it talks to and the key it sends, unless --url / --key say otherwise. Read here, like every
    # other setting, so FACEGATE_API_URL / FACEGATE_API_KEY (or .env) work without flags.
    api_url: str = "http://127.0.0.1:8085"
    # A SecretStr so that printing the settings never shows it.
    api_key: SecretStr | None = None

    # Browsers (issue 13). Origins whose pages may call the API (CORS), e.g.
    # FACEGATE_CORS_ORIGINS=https://console.example.com,http://localhost:3000 (or a JSON list);
    # "*" allows any origin. Empty, the default: no CORS headers at all, so a page of another
    # origin cannot read the answers. Keys travel in the x-api-key header, never in cookies, so
    # credentialed requests are not allowed whatever this says.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins_list(cls, value: object) -> object:
        # A comma-separated variable is the natural way to write a list in a shell.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    # Overload (service/inference.py): requests that run the models are admitted by estimated
    # cost when their headers arrive, before the body is read, so a refusal costs nothing.
    # A request that would wait longer than this for an inference worker (by the backlog's
    # estimated cost) is answered 503 with Retry-After at once, and so is one still waiting
    # when this has passed: admitted requests wait at most this long, whatever the load.
    max_queue_wait_s: float = 1.0
    # Request bodies (by Content-Length) admitted at once, in bytes, so that many large bodies
    # parsed together cannot exhaust memory; one request is always admitted. 0: no limit.
    max_inflight_body_bytes: int = 128 * 1024 * 1024

    # Open-set identification (service/decision.py, engine/openset.py). Identify names the best
    # enrollment only when its score reaches the collection's threshold, computed at training
    # from the number of embeddings in the snapshot and the recogniser's impostor-score tail so
    # that a stranger is named as someone with this probability (the false-positive
    # identification rate, FPIR), whatever the collection's size.
    identify_target_fpir: float = Field(default=0.01, gt=0.0, lt=1.0)
    # The same for collections created with ``unknowns: true``: stricter.
    unknowns_target_fpir: float = Field(default=0.001, gt=0.0, lt=1.0)
    # Training warns (log and collection listing) when the target leaves an expected
    # true-positive identification rate (a probe of an enrolled person named) below this.
    identify_warn_tpir: float = Field(default=0.9, ge=0.0, le=1.0)

    # Training jobs shared by every process on one database (service/training.py). A job is
    # held under a lease that its process renews by heartbeat while it runs; a process that dies
    # stops renewing, and any live process's sweeper claims the job once the lease has expired.
    # With these defaults a dead owner's job is taken over within lease + sweep = 20 s (and
    # finished a moment later): keep the heartbeat well under the lease, so that a slow
    # database write does not let a live owner's lease lapse.
    training_lease_s: float = Field(default=15.0, gt=0.0)
    training_heartbeat_s: float = Field(default=5.0, gt=0.0)
    # Seconds between sweeps for expired jobs; 0 disables this process's sweeper (it still runs
    # the jobs it was asked for, and resumes expired ones at start).
    training_sweep_s: float = Field(default=5.0, ge=0.0)
    # Seconds between polls for collections whose members changed since their snapshot: a
    # large one's approximate index is brought up to date in the background once its changes
    # pause, so that the next training only folds in the last few (service/ahead.py). 0: off
    # (a training then builds what it needs itself, ~25 s at 10^6 on 2 cores).
    index_ahead_s: float = Field(default=10.0, ge=0.0)
    # Test-only: seconds a job waits, holding and renewing its lease, before it takes the
    # snapshot, so that a test can kill its process mid-job. Never set it in production.
    training_test_delay_s: float = Field(default=0.0, ge=0.0)
