"""Initial schema: keys, collections, enrollments, embeddings, membership, snapshots, spoof checks.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_table(
        "collections",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unknowns", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("trained_revision", sa.Integer(), nullable=True),
        sa.Column("trained_at", sa.DateTime(), nullable=True),
        sa.Column("training", sa.Boolean(), nullable=False),
        sa.Column("snapshot_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_collections"),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_keys.id"],
            ondelete="CASCADE",
            name="fk_collections_owner_id_api_keys",
        ),
    )
    op.create_index("ix_collections_owner_id", "collections", ["owner_id"])
    op.create_table(
        "enrollments",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrollments"),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_keys.id"],
            ondelete="CASCADE",
            name="fk_enrollments_owner_id_api_keys",
        ),
    )
    op.create_index("ix_enrollments_owner_id", "enrollments", ["owner_id"])
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("enrollment_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_embeddings"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            ondelete="CASCADE",
            name="fk_embeddings_enrollment_id_enrollments",
        ),
    )
    op.create_index(
        "ix_embeddings_enrollment_position", "embeddings", ["enrollment_id", "position"]
    )
    op.create_table(
        "collection_members",
        sa.Column("collection_id", ID, nullable=False),
        sa.Column("enrollment_id", ID, nullable=False),
        sa.Column("added", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "enrollment_id", name="pk_collection_members"),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            ondelete="CASCADE",
            name="fk_collection_members_collection_id_collections",
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            ondelete="CASCADE",
            name="fk_collection_members_enrollment_id_enrollments",
        ),
    )
    op.create_index("ix_collection_members_enrollment_id", "collection_members", ["enrollment_id"])
    op.create_table(
        "trained_embeddings",
        sa.Column("collection_id", ID, nullable=False),
        sa.Column("embedding_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("collection_id", "embedding_id", name="pk_trained_embeddings"),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            ondelete="CASCADE",
            name="fk_trained_embeddings_collection_id_collections",
        ),
        sa.ForeignKeyConstraint(
            ["embedding_id"],
            ["embeddings.id"],
            ondelete="CASCADE",
            name="fk_trained_embeddings_embedding_id_embeddings",
        ),
    )
    op.create_index("ix_trained_embeddings_embedding_id", "trained_embeddings", ["embedding_id"])
    op.create_table(
        "spoof_checks",
        sa.Column("id", ID, nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spoof_checks"),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_keys.id"],
            ondelete="CASCADE",
            name="fk_spoof_checks_owner_id_api_keys",
        ),
    )
    op.create_index("ix_spoof_checks_owner_id", "spoof_checks", ["owner_id"])


def downgrade() -> None:
    for table in (
        "spoof_checks",
        "trained_embeddings",
        "collection_members",
        "embeddings",
        "enrollments",
        "collections",
        "api_keys",
    ):
        op.drop_table(table)
