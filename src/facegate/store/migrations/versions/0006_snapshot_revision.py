"""The trained snapshot becomes a revision; PostgreSQL keeps vectors in a pgvector column.

Until now training deleted a collection's snapshot rows and inserted one per embedding again
(47 s at a million). A snapshot is now two numbers on the collection: the members added at or
before ``trained_revision`` and, of their embeddings, those with ids up to
``trained_watermark`` (store/snapshot.py). Upgrading keeps what every trained collection
identifies against: members that had rows in its snapshot get ``added_revision`` 0, the others
(added since its training) the collection's current revision, and the watermark is the highest
embedding id its snapshot held. Embedding ids stop being reused (SQLite AUTOINCREMENT), which
the watermark relies on.

On PostgreSQL the pgvector extension is created and ``embeddings.vector`` becomes ``vector``
(converted in batches in Python: PostgreSQL has no cast from float32 bytes).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("collection_members") as batch:
        batch.add_column(
            sa.Column("added_revision", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("trained_watermark", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("train_requests", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("index_name", sa.String(200), nullable=True))
    # Plain SQL that SQLite and PostgreSQL both run.
    op.execute(
        """
        UPDATE collection_members SET added_revision = (
            SELECT c.revision FROM collections c WHERE c.id = collection_members.collection_id
        )
        WHERE NOT EXISTS (
            SELECT 1 FROM trained_embeddings t JOIN embeddings e ON e.id = t.embedding_id
            WHERE t.collection_id = collection_members.collection_id
              AND e.enrollment_id = collection_members.enrollment_id
        )
        """
    )
    op.execute(
        """
        UPDATE collections SET trained_watermark = COALESCE((
            SELECT MAX(t.embedding_id) FROM trained_embeddings t
            WHERE t.collection_id = collections.id
        ), 0)
        WHERE trained_revision IS NOT NULL
        """
    )
    op.drop_table("trained_embeddings")
    if op.get_context().dialect.name == "postgresql":
        _vectors_to_pgvector()
    else:
        # AUTOINCREMENT needs the table rebuilt (SQLite cannot add it in place).
        with op.batch_alter_table(
            "embeddings", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def _vectors_to_pgvector() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("ALTER TABLE embeddings ADD COLUMN vector_new vector")
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.text("SELECT id, vector FROM embeddings WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            break
        connection.execute(
            sa.text("UPDATE embeddings SET vector_new = CAST(:v AS vector) WHERE id = :id"),
            [{"id": row_id, "v": _vector_text(bytes(blob))} for row_id, blob in rows],
        )
        last = rows[-1][0]
    op.drop_column("embeddings", "vector")
    op.alter_column("embeddings", "vector_new", new_column_name="vector", nullable=False)


def _vector_text(blob: bytes) -> str:
    values = np.frombuffer(blob, dtype="<f4")
    return "[" + ",".join(repr(float(v)) for v in values) + "]"


def downgrade() -> None:
    raise NotImplementedError("0006 is not reversible: restore the backup taken before upgrading")
