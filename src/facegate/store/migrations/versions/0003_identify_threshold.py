"""A trained collection records what identify's open-set decision needs: its size and threshold.

Training now computes the threshold on the score for the snapshot's size and the target FPIR
(service/decision.py). Snapshots taken before this revision get their size from their rows
(every recipe counted: the recipe was not recorded with the count) and no threshold: identify
computes it from the size until the collection is trained again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("trained_people", sa.Integer()),
    ("trained_embeddings", sa.Integer()),
    ("identify_threshold", sa.Float()),
    ("identify_target_fpir", sa.Float()),
    ("identify_expected_tpir", sa.Float()),
    ("identify_warning", sa.Text()),
)


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    # Plain SQL that SQLite and PostgreSQL both run: the size of every existing snapshot.
    op.execute(
        """
        UPDATE collections SET
            trained_embeddings = (
                SELECT COUNT(*) FROM trained_embeddings t
                WHERE t.collection_id = collections.id
            ),
            trained_people = (
                SELECT COUNT(DISTINCT e.enrollment_id) FROM trained_embeddings t
                JOIN embeddings e ON e.id = t.embedding_id
                WHERE t.collection_id = collections.id
            )
        WHERE trained_revision IS NOT NULL
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
