"""Training reads what changed since the previous snapshot instead of every member.

``snapshot_removals`` logs the embeddings that left a collection (their enrollment was
deleted), so that training can take them out of the previous snapshot's index without reading
the collection's million memberships again; ``collection_members`` gains an index on
(collection_id, added_revision), by which training finds the members added since, and one on
(collection_id, added, enrollment_id), the order GET /v1/collection pages members in. Upgrading
logs nothing: an index made before it has no record of its snapshot and is built anew by the
next training.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshot_removals",
        sa.Column("collection_id", sa.String(64), nullable=False),
        sa.Column("embedding_id", sa.Integer(), nullable=False),
        sa.Column("removed_revision", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name="fk_snapshot_removals_collection_id_collections",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("collection_id", "embedding_id", name="pk_snapshot_removals"),
    )
    op.create_index(
        "ix_collection_members_collection_revision",
        "collection_members",
        ["collection_id", "added_revision"],
    )
    op.create_index(
        "ix_collection_members_collection_added",
        "collection_members",
        ["collection_id", "added", "enrollment_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_collection_members_collection_added", "collection_members")
    op.drop_index("ix_collection_members_collection_revision", "collection_members")
    op.drop_table("snapshot_removals")
