"""Every embedding records the recipe that made it (recogniser, version, alignment) and its TTA.

Rows written before this revision were all made by dlib's ResNet on dlib's 5-point chips: they
are tagged with that recipe. Their test-time augmentation is not known (it was a setting) and is
left empty. Match and identify compare only embeddings of the running recipe.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The recipe key of facegate 0.1's only recogniser (engine/zoo.py DLIB_RECIPE), written out:
# a migration must not change when the code's constants do.
PREVIOUS_RECIPE = "dlib-resnet@v1/shape5-top8-v2"


def upgrade() -> None:
    with op.batch_alter_table("embeddings") as batch:
        batch.add_column(
            sa.Column("recipe", sa.String(96), nullable=False, server_default=PREVIOUS_RECIPE)
        )
        batch.add_column(sa.Column("tta", sa.String(16), nullable=True))
    op.create_index("ix_embeddings_recipe", "embeddings", ["recipe"])


def downgrade() -> None:
    op.drop_index("ix_embeddings_recipe", table_name="embeddings")
    with op.batch_alter_table("embeddings") as batch:
        batch.drop_column("tta")
        batch.drop_column("recipe")
