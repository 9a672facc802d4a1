"""The deletion log is read by revision on the request path.

A search whose index carries its rows (index/gallery.py, the local rows) asks the log which
embeddings left the collection after its snapshot's revision. The log also holds the removals
folded into that snapshot until the next training prunes them; without this index on
(collection_id, removed_revision) each search would walk all of them (after a mass deletion,
tens of thousands of rows a search), with it only those it wants.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_snapshot_removals_collection_revision",
        "snapshot_removals",
        ["collection_id", "removed_revision"],
    )


def downgrade() -> None:
    op.drop_index("ix_snapshot_removals_collection_revision", "snapshot_removals")
