"""Enrollments: a person's profile, one embedding per enrolled image.

The expensive part (decode, detect, embed every image) runs before the transaction opens, and
the transaction writes everything or nothing: a request with one unusable image stores nothing.
Listing reads only ids, names and counts: never a vector or an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from facegate.config import Settings
from facegate.errors import BadRequest, TooManyImages
from facegate.service.common import Tenant, check_page, get_owned, new_id, utcnow
from facegate.service.images import EnrolledFace, FaceReader
from facegate.store.db import Database
from facegate.store.models import Collection, CollectionMember, Embedding, Enrollment
from facegate.store.snapshot import log_removal
from facegate.store.vectors import to_blob

MAX_NAME_LENGTH = 512
# A page of the listing: large enough for a console's table, small enough that one request
# never reads a million rows.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class RecipeCount:
    """How many of an enrollment's embeddings were made by one recipe (and TTA mode): only
    embeddings of the running engine's recipe are compared, so a mix tells the operator that
    the person should be re-enrolled after an engine change."""

    recipe: str
    tta: str | None
    images: int


@dataclass(frozen=True)
class EnrollmentView:
    id: str
    name: str | None
    images: int
    collections: list[str]
    recipes: list[RecipeCount]
    created: datetime
    updated: datetime


@dataclass(frozen=True)
class EnrollmentPage:
    enrollments: list[EnrollmentView]
    total: int
    limit: int
    offset: int


class Enrollments:
    def __init__(self, database: Database, reader: FaceReader, settings: Settings) -> None:
        self._db = database
        self._reader = reader
        self._settings = settings

    def create(
        self,
        tenant: Tenant,
        images: dict[str, bytes],
        *,
        name: str | None = None,
        collection_id: str | None = None,
    ) -> str:
        self._check_count(images)
        if name is not None and len(name) > MAX_NAME_LENGTH:
            raise BadRequest(f"name: at most {MAX_NAME_LENGTH} characters")
        if collection_id is not None:
            with self._db.reading() as session:  # fail fast, before the models run
                get_owned(session, Collection, collection_id, tenant)
        faces = self._faces(images)
        now = utcnow()
        enrollment_id = new_id()
        with self._db.transaction() as session:
            session.add(
                Enrollment(
                    id=enrollment_id, owner_id=tenant.key_id, name=name, created=now, updated=now
                )
            )
            session.flush()
            self._add_embeddings(session, enrollment_id, faces, images, first_position=0)
            if collection_id is not None:
                collection = get_owned(session, Collection, collection_id, tenant)
                collection.revision += 1
                collection.updated = now
                session.add(
                    CollectionMember(
                        collection_id=collection.id,
                        enrollment_id=enrollment_id,
                        added=now,
                        added_revision=collection.revision,
                    )
                )
        return enrollment_id

    def add_images(self, tenant: Tenant, enrollment_id: str, images: dict[str, bytes]) -> str:
        self._check_count(images)
        with self._db.reading() as session:
            get_owned(session, Enrollment, enrollment_id, tenant)
        faces = self._faces(images)
        with self._db.transaction() as session:
            enrollment = get_owned(session, Enrollment, enrollment_id, tenant)
            last = session.scalar(
                select(func.max(Embedding.position)).where(Embedding.enrollment_id == enrollment.id)
            )
            self._add_embeddings(
                session,
                enrollment.id,
                faces,
                images,
                first_position=(last if last is not None else -1) + 1,
            )
            enrollment.updated = utcnow()
            # What training would read has changed for every collection holding this person.
            session.execute(
                update(Collection)
                .where(Collection.id.in_(_collections_holding(enrollment.id)))
                .values(revision=Collection.revision + 1)
            )
        return enrollment.id

    def delete(self, tenant: Tenant, enrollment_id: str) -> None:
        """Gone for good: the row, its embeddings, memberships and places in trained snapshots."""
        now = utcnow()
        with self._db.transaction() as session:
            enrollment = get_owned(session, Enrollment, enrollment_id, tenant)
            # Its rows leave every snapshot with the rows themselves (store/snapshot.py); the
            # galleries check what they answer against the store, so no snapshot is read again
            # (a deletion never costs a request a rebuild).
            session.execute(
                update(Collection)
                .where(Collection.id.in_(_collections_holding(enrollment.id)))
                .values(revision=Collection.revision + 1, updated=now)
            )
            log_removal(session, enrollment.id)
            session.execute(
                delete(CollectionMember).where(CollectionMember.enrollment_id == enrollment.id)
            )
            session.execute(delete(Embedding).where(Embedding.enrollment_id == enrollment.id))
            session.delete(enrollment)
        # Committed; now also out of the write-ahead log (see Database.after_delete).
        self._db.after_delete()

    def page(
        self, tenant: Tenant, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> EnrollmentPage:
        """One page of the caller's enrollments, oldest first, and how many there are in all."""
        check_page(limit, offset, lowest=1, highest=MAX_PAGE_SIZE)
        owned = Enrollment.owner_id == tenant.key_id
        with self._db.reading() as session:
            total = session.scalar(select(func.count()).select_from(Enrollment).where(owned)) or 0
            # Ordered on a unique key too, so pages neither repeat nor skip rows of equal times.
            rows = session.scalars(
                select(Enrollment)
                .where(owned)
                .order_by(Enrollment.created, Enrollment.id)
                .limit(limit)
                .offset(offset)
            ).all()
            views = _views(session, list(rows))
        return EnrollmentPage(enrollments=views, total=total, limit=limit, offset=offset)

    def get(self, tenant: Tenant, enrollment_id: str) -> EnrollmentView:
        """One of the caller's enrollments (NotFound for an id of another key)."""
        with self._db.reading() as session:
            enrollment = get_owned(session, Enrollment, enrollment_id, tenant)
            return _views(session, [enrollment])[0]

    def _check_count(self, images: dict[str, bytes]) -> None:
        limit = self._settings.max_images_per_enrollment
        if not images:
            raise BadRequest("no image: send one to ten base64 images as img0, img1, …")
        if len(images) > limit:
            raise TooManyImages(
                f"{len(images)} images sent; at most {limit} are accepted per request"
            )

    def _faces(self, images: dict[str, bytes]) -> list[EnrolledFace]:
        return self._reader.enrollable_faces(images)

    def _add_embeddings(
        self,
        session: Session,
        enrollment_id: str,
        faces: list[EnrolledFace],
        images: dict[str, bytes],
        *,
        first_position: int,
    ) -> None:
        now = utcnow()
        engine = self._reader.engine
        for offset, face in enumerate(faces):
            session.add(
                Embedding(
                    enrollment_id=enrollment_id,
                    position=first_position + offset,
                    vector=to_blob(face.descriptor),
                    recipe=engine.recipe.key,
                    tta=engine.tta,
                    image=images[face.field] if self._settings.store_images else None,
                    created=now,
                )
            )


def _collections_holding(enrollment_id: str) -> Select[str]:
    return select(CollectionMember.collection_id).where(
        CollectionMember.enrollment_id == enrollment_id
    )


def _views(session: Session, enrollments: list[Enrollment]) -> list[EnrollmentView]:
    """Views of ``enrollments`` with two grouped queries, whatever the page's size."""
    ids = [e.id for e in enrollments]
    recipes: dict[str, list[RecipeCount]] = {i: [] for i in ids}
    collections: dict[str, list[str]] = {i: [] for i in ids}
    if ids:
        counted = session.execute(
            select(Embedding.enrollment_id, Embedding.recipe, Embedding.tta, func.count())
            .where(Embedding.enrollment_id.in_(ids))
            .group_by(Embedding.enrollment_id, Embedding.recipe, Embedding.tta)
            .order_by(Embedding.enrollment_id, Embedding.recipe, Embedding.tta)
        ).all()
        for enrollment_id, recipe, tta, count in counted:
            recipes[enrollment_id].append(RecipeCount(recipe=recipe, tta=tta, images=count))
        members = session.execute(
            select(CollectionMember.enrollment_id, CollectionMember.collection_id)
            .where(CollectionMember.enrollment_id.in_(ids))
            .order_by(CollectionMember.added, CollectionMember.collection_id)
        ).all()
        for enrollment_id, collection_id in members:
            collections[enrollment_id].append(collection_id)
    return [
        EnrollmentView(
            id=e.id,
            name=e.name,
            images=sum(r.images for r in recipes[e.id]),
            collections=collections[e.id],
            recipes=recipes[e.id],
            created=e.created,
            updated=e.updated,
        )
        for e in enrollments
    ]
