"""Training is a job in the database: the collection row records who holds its lease and until when.

A collection marked ``training`` by an older version has no owner, so whichever process sweeps
first claims it and finishes the job (service/training.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("training_owner", sa.String(128), nullable=True))
        batch.add_column(sa.Column("training_lease_until", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("training_lease_until")
        batch.drop_column("training_owner")
