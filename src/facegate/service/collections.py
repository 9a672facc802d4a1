"""Collections: named groups of enrollments that identify searches, owned by one key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, select

from facegate.errors import BadRequest
from facegate.service.common import Tenant, check_page, get_owned, new_id, utcnow
from facegate.service.decision import OpenSetPlanner, ThresholdPlan
from facegate.service.ports import Gallery
from facegate.service.training import Trainer, TrainingStatus, status_of
from facegate.store.db import Database
from facegate.store.models import Collection, CollectionMember, Enrollment, SnapshotRemoval

MAX_NAME_LENGTH = 512
# GET /v1/collection lists at most this many member ids per collection unless asked otherwise:
# every id of a small collection (the seed's listing), not megabytes for a million members.
DEFAULT_ENROLLMENTS_LIMIT = 1000
MAX_ENROLLMENTS_LIMIT = 10000


@dataclass(frozen=True)
class CollectionView:
    id: str
    name: str
    # One page of the members' ids (oldest membership first) and how many members there are.
    enrollments: list[str]
    unknowns: bool
    created: datetime
    updated: datetime
    owner: str
    status: TrainingStatus
    trained_at: datetime | None
    # The trained snapshot's size and identify's threshold for it (None until trained).
    plan: ThresholdPlan | None = None
    enrollment_count: int = 0


class Collections:
    def __init__(
        self, database: Database, trainer: Trainer, planner: OpenSetPlanner, gallery: Gallery
    ) -> None:
        self._db = database
        self._trainer = trainer
        self._planner = planner
        self._gallery = gallery

    def create(self, tenant: Tenant, name: str, *, unknowns: bool = False) -> str:
        if not name.strip():
            raise BadRequest("name: must not be empty")
        if len(name) > MAX_NAME_LENGTH:
            raise BadRequest(f"name: at most {MAX_NAME_LENGTH} characters")
        now = utcnow()
        collection_id = new_id()
        with self._db.transaction() as session:
            session.add(
                Collection(
                    id=collection_id,
                    owner_id=tenant.key_id,
                    name=name,
                    unknowns=unknowns,
                    created=now,
                    updated=now,
                    revision=0,
                    training=False,
                    snapshot_version=0,
                )
            )
        return collection_id

    def add_enrollment(self, tenant: Tenant, collection_id: str, enrollment_id: str) -> str:
        """Add a member (idempotent) and retrain, as the seed promises for this call."""
        self._trainer.ensure_open()
        with self._db.transaction() as session:
            collection = get_owned(session, Collection, collection_id, tenant)
            enrollment = get_owned(session, Enrollment, enrollment_id, tenant)
            if session.get(CollectionMember, (collection.id, enrollment.id)) is None:
                now = utcnow()
                collection.revision += 1
                collection.updated = now
                session.add(
                    CollectionMember(
                        collection_id=collection.id,
                        enrollment_id=enrollment.id,
                        added=now,
                        added_revision=collection.revision,
                    )
                )
            claimed = self._trainer.mark(session, collection)
        self._trainer.queue_if_claimed(collection.id, claimed)
        return collection.id

    def delete(self, tenant: Tenant, collection_id: str) -> None:
        """The collection, its membership list and snapshot; the enrollments themselves stay."""
        with self._db.transaction() as session:
            collection = get_owned(session, Collection, collection_id, tenant)
            for table in (CollectionMember, SnapshotRemoval):
                session.execute(delete(table).where(table.collection_id == collection.id))
            session.delete(collection)
        self._gallery.retire(collection_id, ())
        self._db.after_delete()

    def list(
        self,
        tenant: Tenant,
        *,
        enrollments_limit: int = DEFAULT_ENROLLMENTS_LIMIT,
        enrollments_offset: int = 0,
        only: str | None = None,
    ) -> list[CollectionView]:
        """Every collection of the tenant (or ``only`` that one: NotFound if it is not the
        tenant's) with the same page of each one's member ids: those from
        ``enrollments_offset`` on, at most ``enrollments_limit`` (0: counts only)."""
        check_page(
            enrollments_limit,
            enrollments_offset,
            lowest=0,
            highest=MAX_ENROLLMENTS_LIMIT,
            prefix="enrollments_",
        )
        owned = Collection.owner_id == tenant.key_id
        with self._db.reading() as session:
            if only is not None:
                owned = and_(
                    owned, Collection.id == get_owned(session, Collection, only, tenant).id
                )
            collections = session.scalars(
                select(Collection).where(owned).order_by(Collection.created, Collection.id)
            ).all()
            # Per collection, by the members' index on (collection_id, added, enrollment_id):
            # a count of the index's range and the page read from it, whatever the size (a
            # window function over every member took ~2.4 s at 10^6).
            counts = {
                c.id: session.scalar(
                    select(func.count())
                    .select_from(CollectionMember)
                    .where(CollectionMember.collection_id == c.id)
                )
                or 0
                for c in collections
            }
            members: dict[str, list[str]] = {c.id: [] for c in collections}
            if enrollments_limit > 0:
                for c in collections:
                    members[c.id] = list(
                        session.scalars(
                            select(CollectionMember.enrollment_id)
                            .where(CollectionMember.collection_id == c.id)
                            .order_by(CollectionMember.added, CollectionMember.enrollment_id)
                            .limit(enrollments_limit)
                            .offset(enrollments_offset)
                        )
                    )
            return [
                CollectionView(
                    id=c.id,
                    name=c.name,
                    enrollments=members[c.id],
                    unknowns=c.unknowns,
                    created=c.created,
                    updated=c.updated,
                    owner=c.owner_id,
                    status=status_of(c),
                    trained_at=c.trained_at,
                    plan=self._planner.effective(c),
                    enrollment_count=counts.get(c.id, 0),
                )
                for c in collections
            ]
