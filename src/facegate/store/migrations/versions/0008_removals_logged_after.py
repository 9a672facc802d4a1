"""Collections record how far back their deletion log reaches.

``collections.removals_logged_after``: every removal logged after this revision is still in
``snapshot_removals`` (training prunes the older ones); NULL while nothing has been pruned.
An index made for an earlier snapshot can then be told apart from one an update can still
start from: on PostgreSQL each machine keeps its own index folders and may hold an older one
than the last training used.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("removals_logged_after", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("removals_logged_after")
