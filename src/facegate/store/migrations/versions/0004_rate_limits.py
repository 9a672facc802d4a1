"""Rate limits are counted in the database, so that every process of a deployment shares them.

One row per API key and window (service/ratelimit.py); rows of old windows are pruned as the
service runs, so the table starts empty and nothing existing changes.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "window_start", name="pk_rate_limits"),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
