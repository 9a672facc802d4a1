"""All services wired together once per process (the API's app factory builds one)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facegate.config import Settings
from facegate.index.factory import make_gallery
from facegate.service.collections import Collections
from facegate.service.decision import OpenSetPlanner
from facegate.service.detection import Detection
from facegate.service.enrollments import Enrollments
from facegate.service.images import FaceReader
from facegate.service.inference import InferencePool, resolve_workers
from facegate.service.keys import KeyStore
from facegate.service.ports import Engine, Gallery
from facegate.service.ratelimit import RateLimiter
from facegate.service.recognition import Recognition
from facegate.service.spoof import SpoofChecks
from facegate.service.training import Trainer
from facegate.store.db import Database

log = logging.getLogger("facegate.service")


@dataclass
class Services:
    settings: Settings
    engine: Engine
    database: Database
    keys: KeyStore
    collections: Collections
    enrollments: Enrollments
    trainer: Trainer
    recognition: Recognition
    detection: Detection
    spoof: SpoofChecks
    inference: InferencePool
    rate_limiter: RateLimiter
    gallery: Gallery

    @classmethod
    def build(cls, settings: Settings, engine: Engine, database: Database) -> Services:
        reader = FaceReader(engine, settings)
        planner = OpenSetPlanner(settings, engine)
        gallery = make_gallery(settings, database)
        trainer = Trainer(database, planner, engine.recipe, gallery, settings)
        return cls(
            settings=settings,
            engine=engine,
            database=database,
            keys=KeyStore(database),
            collections=Collections(database, trainer, planner, gallery),
            enrollments=Enrollments(database, reader, settings),
            trainer=trainer,
            recognition=Recognition(database, reader, settings, gallery, planner),
            detection=Detection(reader),
            spoof=SpoofChecks(database, reader, settings),
            inference=InferencePool(
                resolve_workers(settings.max_concurrent_inference),
                settings.inference_queue_limit,
                max_wait_s=settings.max_queue_wait_s,
                max_body_bytes=settings.max_inflight_body_bytes,
            ),
            rate_limiter=RateLimiter(database, settings.rate_limit_per_minute),
            gallery=gallery,
        )

    def start(self) -> None:
        """Start-up chores: the gallery's index, resume interrupted training, tell the
        operator about keys."""
        self.gallery.open(self.engine.recipe.key, self.engine.recipe.dimension)
        resumed = self.trainer.resume_interrupted()
        if resumed:
            log.info("resumed interrupted training", extra={"collections": resumed})
        # Heartbeats for the jobs this process holds, and the sweep for jobs whose owner died.
        self.trainer.start()
        if self.keys.active_count() == 0:
            log.warning(
                "no API key exists yet, so every request will be refused with 401; create one "
                "with: facegate keys create NAME --data-dir %s",
                self.settings.data_dir.resolve(),
            )

    def stop(self) -> None:
        self.inference.close()
        self.trainer.shutdown()

    def ready(self) -> tuple[bool, str]:
        """Whether requests can be served now, and why not."""
        if not self.engine.ready:
            return False, "the face models are still loading"
        try:
            self.database.ping()
        except Exception as exc:
            return False, f"the store is unreachable ({type(exc).__name__})"
        return True, "ready"
