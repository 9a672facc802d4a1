"""Small shared helpers: ids, clock, owned-row lookup, field-named errors."""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from facegate.errors import BadRequest, FacegateError, NotFound
from facegate.store.models import Collection, Enrollment

# The longest id echoed back in an error message; longer input is cut so messages stay short.
_ECHO_LIMIT = 80


@dataclass(frozen=True)
class Tenant:
    """The caller: one API key. Everything it creates belongs to ``key_id``."""

    key_id: str
    name: str


def new_id() -> str:
    """An opaque, URL-safe, unguessable id (128 random bits) that never starts with "-": a
    command line would read such an id as an option (facegate collections add C -x… failed)."""
    while True:
        candidate = secrets.token_urlsafe(16)
        if not candidate.startswith("-"):
            return candidate


def utcnow() -> datetime:
    """Naive UTC: stored and compared the same way on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    """The seed's timestamp layout (``2017-08-19T00:13:24.971650``), always in UTC."""
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def echo(value: str) -> str:
    return value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "…"


OwnedT = TypeVar("OwnedT", Collection, Enrollment)


def get_owned(session: Session, model: type[OwnedT], row_id: str, tenant: Tenant) -> OwnedT:
    """The row if it exists *and* belongs to the caller; otherwise 404 (never 403, no leaks)."""
    row = session.get(model, row_id)
    if row is None or row.owner_id != tenant.key_id:
        kind = "collection" if model is Collection else "enrollment"
        raise NotFound(f"no {kind} with id {echo(row_id)!r} for this API key")
    return row


ErrorT = TypeVar("ErrorT", bound=FacegateError)


def about(field: str, error: ErrorT) -> ErrorT:
    """The same error (same class, code and status) with the field it concerns in front."""
    named = copy.copy(error)
    named.message = f"{field}: {error.message}"
    named.args = (named.message,)
    return named


def check_page(limit: int, offset: int, *, lowest: int, highest: int, prefix: str = "") -> None:
    """BadRequest unless ``lowest <= limit <= highest`` and ``offset >= 0``; the fields are
    named ``{prefix}limit`` and ``{prefix}offset`` in the message."""
    if not lowest <= limit <= highest:
        raise BadRequest(f"{prefix}limit: must be between {lowest} and {highest}")
    if offset < 0:
        raise BadRequest(f"{prefix}offset: must be 0 or more")
