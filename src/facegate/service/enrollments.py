"""Enrollments: a person's profile, one embedding per enrolled image.

The expensive part (decode, detect, embed every image) runs before the transaction opens, and
the transaction writes everything or nothing: a request with one unusable image stores nothing.
"""

from __future__ import annotations

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.orm import Session

from facegate.config import Settings
from facegate.errors import BadRequest, TooManyImages
from facegate.service.common import Tenant, get_owned, new_id, utcnow
from facegate.service.images import EnrolledFace, FaceReader
from facegate.store.db import Database
from facegate.store.models import (
    Collection,
    CollectionMember,
    Embedding,
    Enrollment,
    TrainedEmbedding,
)
from facegate.store.vectors import to_blob

MAX_NAME_LENGTH = 512


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
                session.add(
                    CollectionMember(
                        collection_id=collection.id, enrollment_id=enrollment_id, added=now
                    )
                )
                collection.revision += 1
                collection.updated = now
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
            embedding_ids = select(Embedding.id).where(Embedding.enrollment_id == enrollment.id)
            snapshotted = select(TrainedEmbedding.collection_id).where(
                TrainedEmbedding.embedding_id.in_(embedding_ids)
            )
            session.execute(
                update(Collection)
                .where(Collection.id.in_(snapshotted))
                .values(snapshot_version=Collection.snapshot_version + 1)
            )
            session.execute(
                update(Collection)
                .where(Collection.id.in_(_collections_holding(enrollment.id)))
                .values(revision=Collection.revision + 1, updated=now)
            )
            session.execute(
                delete(TrainedEmbedding).where(TrainedEmbedding.embedding_id.in_(embedding_ids))
            )
            session.execute(
                delete(CollectionMember).where(CollectionMember.enrollment_id == enrollment.id)
            )
            session.execute(delete(Embedding).where(Embedding.enrollment_id == enrollment.id))
            session.delete(enrollment)
        # Committed; now also out of the write-ahead log (see Database.after_delete).
        self._db.after_delete()

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
