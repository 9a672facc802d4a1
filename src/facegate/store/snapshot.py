"""Which rows a trained snapshot holds: one definition for training, galleries and counts.

A snapshot is a revision (see ``Collection``): the members added at or before the collection's
``trained_revision`` and, of their embeddings of one recipe, those with ids up to
``trained_watermark``. Rows deleted since are simply gone from it.

On PostgreSQL, ids come from a sequence shared by concurrent transactions, so an embedding
whose transaction commits just after training read the watermark can have a lower id and join
the snapshot early; its transaction also moves the collection's revision, so the collection
reads ``stale`` and the next training records it properly. SQLite runs one writer at a time:
ids commit in order there.

Deletions are logged (``SnapshotRemoval``): the embedding ids that left each collection, at the
revision the deletion made. Training reads that log and the rows added since the previous
snapshot, instead of every member, to update the previous snapshot's index (index/gallery.py).
Enrollment deletion is the only way rows leave a collection but with the whole collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, insert, select, update
from sqlalchemy.orm import Session

from facegate.store.models import Collection, CollectionMember, Embedding, SnapshotRemoval


@dataclass(frozen=True)
class SnapshotBounds:
    collection_id: str
    revision: int  # members added at or before this collection revision
    watermark: int  # embeddings with ids up to this one
    recipe: str  # of this recipe only

    def conditions(self) -> list[ColumnElement[bool]]:
        return [
            CollectionMember.collection_id == self.collection_id,
            CollectionMember.added_revision <= self.revision,
            Embedding.id <= self.watermark,
            Embedding.recipe == self.recipe,
        ]

    def select(self, *columns: Any) -> Select[Any]:
        """``columns`` of the snapshot's embeddings (joined with their membership)."""
        return (
            select(*columns)
            .select_from(Embedding)
            .join(CollectionMember, CollectionMember.enrollment_id == Embedding.enrollment_id)
            .where(*self.conditions())
        )


def log_removal(session: Session, enrollment_id: str) -> None:
    """Before an enrollment's rows are deleted, and after its collections' revisions moved:
    log each of its embeddings as removed from each collection holding it."""
    rows = (
        select(CollectionMember.collection_id, Embedding.id, Collection.revision)
        .select_from(CollectionMember)
        .join(Embedding, Embedding.enrollment_id == CollectionMember.enrollment_id)
        .join(Collection, Collection.id == CollectionMember.collection_id)
        .where(CollectionMember.enrollment_id == enrollment_id)
    )
    session.execute(
        insert(SnapshotRemoval).from_select(
            ["collection_id", "embedding_id", "removed_revision"], rows
        )
    )


def prune_removals(session: Session, collection_id: str, through_revision: int) -> None:
    """Forget the removals logged at or before ``through_revision``: the index of the snapshot
    taken there holds none of them, and an update starts from an index of that snapshot or a
    later one (the collection records how far back the log reaches)."""
    session.execute(
        update(Collection)
        .where(Collection.id == collection_id)
        .values(removals_logged_after=through_revision)
    )
    session.execute(
        delete(SnapshotRemoval).where(
            SnapshotRemoval.collection_id == collection_id,
            SnapshotRemoval.removed_revision <= through_revision,
        )
    )
