"""Spoof checks: the engine's probability of a presentation attack, recorded under a key."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from facegate.config import Settings
from facegate.errors import NoFaceFound, Unavailable
from facegate.service.common import Tenant, new_id, utcnow
from facegate.service.images import FaceReader
from facegate.store.db import Database
from facegate.store.models import SpoofCheck

log = logging.getLogger("facegate.spoof")


@dataclass(frozen=True)
class SpoofResult:
    label: str  # "real" or "fake"
    score: float  # probability of fake
    check_id: str


class SpoofChecks:
    def __init__(self, database: Database, reader: FaceReader, settings: Settings) -> None:
        self._db = database
        self._reader = reader
        self._settings = settings

    def check(self, tenant: Tenant, image: bytes) -> SpoofResult:
        """Raises Unavailable (503) while no spoof model is installed: never a made-up score."""
        decoded = self._reader.decode("img", image)
        faces = self._reader.engine.detect(decoded, quality=False, largest_only=True)
        if not faces:
            raise NoFaceFound("img: no face found")
        try:
            score = float(self._reader.engine.spoof_probability(decoded, faces[0]))
        except Unavailable as exc:
            # The engine's reason names files on the server: for the operator's log, not clients.
            log.warning("spoof detection unavailable: %s", exc.message)
            raise Unavailable(
                "spoof detection is not available on this server: no spoof model is installed"
            ) from exc
        label = "fake" if score >= self._settings.spoof_threshold else "real"
        check_id = new_id()
        with self._db.transaction() as session:
            session.add(
                SpoofCheck(
                    id=check_id, owner_id=tenant.key_id, label=label, score=score, created=utcnow()
                )
            )
        return SpoofResult(label=label, score=score, check_id=check_id)
