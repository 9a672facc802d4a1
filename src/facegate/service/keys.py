"""API keys: created by an operator, shown once, stored as SHA-256 digests, revocable.

A secret looks like ``fg_<key id>_<43 random characters>``. The key id inside it lets the store
find the row by primary key; the digest of the whole secret is then compared in constant time,
so neither a lookup nor a comparison leaks how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from facegate.config import Settings
from facegate.errors import BadRequest, NotFound, Unauthorized
from facegate.service.common import Tenant, echo, utcnow
from facegate.store.db import Database
from facegate.store.models import ApiKey

PREFIX = "fg"
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    secret: str


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    revoked: bool
    created: datetime


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create(self, name: str) -> CreatedKey:
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise BadRequest(f"a key name must be 1 to {MAX_NAME_LENGTH} characters")
        key_id = secrets.token_hex(8)
        secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        with self._db.transaction() as session:
            session.add(
                ApiKey(id=key_id, name=name, secret_sha256=digest(secret), created=utcnow())
            )
        return CreatedKey(key_id=key_id, secret=secret)

    def list(self) -> list[KeyInfo]:
        with self._db.reading() as session:
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created, ApiKey.id)).all()
            return [KeyInfo(r.id, r.name, r.revoked_at is not None, r.created) for r in rows]

    def revoke(self, key_id: str) -> None:
        with self._db.transaction() as session:
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key with id {echo(key_id)!r}")
            if row.revoked_at is None:
                row.revoked_at = utcnow()

    def active_count(self) -> int:
        with self._db.reading() as session:
            query = select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
            return int(session.scalar(query) or 0)

    def authenticate(self, secret: str | None) -> Tenant:
        if not secret:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        key_id = _key_id_of(secret)
        with self._db.reading() as session:
            row = session.get(ApiKey, key_id) if key_id else None
            # Compare even when there is no row, so that timing does not tell ids apart.
            expected = row.secret_sha256 if row is not None else digest("")
            matches = hmac.compare_digest(expected, digest(secret))
            if row is None or not matches or row.revoked_at is not None:
                raise Unauthorized("invalid or revoked API key")
            return Tenant(key_id=row.id, name=row.name)


def _key_id_of(secret: str) -> str | None:
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1]:
        return None
    return parts[1]


# The operator's entry points (``facegate keys ...``): each opens the store, migrating it first.
def create_key(settings: Settings, name: str) -> CreatedKey:
    database = Database.from_settings(settings)
    try:
        return KeyStore(database).create(name)
    finally:
        database.dispose()


def list_keys(settings: Settings) -> list[KeyInfo]:
    database = Database.from_settings(settings)
    try:
        return KeyStore(database).list()
    finally:
        database.dispose()


def revoke_key(settings: Settings, key_id: str) -> None:
    database = Database.from_settings(settings)
    try:
        KeyStore(database).revoke(key_id)
    finally:
        database.dispose()
