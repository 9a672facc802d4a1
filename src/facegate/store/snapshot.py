"""Which rows a trained snapshot holds: one definition for training, galleries and counts.

A snapshot is a revision (see ``Collection``): the members added at or before the collection's
``trained_revision`` and, of their embeddings of one recipe, those with ids up to
``trained_watermark``. Rows deleted since are simply gone from it.

On PostgreSQL, ids come from a sequence shared by concurrent transactions, so an embedding
whose transaction commits just after training read the watermark can have a lower id and join
the snapshot early; its transaction also moves the collection's revision, so the collection
reads ``stale`` and the next training records it properly. SQLite runs one writer at a time:
ids commit in order there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from facegate.store.models import CollectionMember, Embedding


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
