"""Tables. Times are naive UTC (the same on SQLite and PostgreSQL); ids are opaque strings.

Deleting an enrollment removes its embeddings (and their places in trained snapshots) through
``ON DELETE CASCADE``; the service layer deletes explicitly as well, so nothing depends on a
backend enforcing foreign keys.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from facegate.store.vectors import VectorBytes

ID_LENGTH = 64

# Stable constraint names so that migrations can address them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ApiKey(Base):
    """One API key = one tenant. Only a SHA-256 digest of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)


class Collection(Base):
    """A set of enrollments to identify against, and the state of its trained snapshot.

    ``revision`` counts changes to what training would read (members and their embeddings);
    ``trained_revision`` is the revision the current snapshot was taken at, so the state is
    ``ready`` when they agree and ``stale`` when they do not. ``snapshot_version`` changes with each
    training, which is what in-memory copies of a snapshot are keyed on.

    The snapshot is a revision, not a copy of rows (store/snapshot.py): the members added at or
    before ``trained_revision`` and, of their embeddings, those with ids up to
    ``trained_watermark``. Training moves two numbers instead of re-inserting every row, and a
    deletion leaves the snapshot with the row itself.
    """

    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    unknowns: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime())
    updated: Mapped[datetime] = mapped_column(DateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)
    trained_revision: Mapped[int | None] = mapped_column(Integer, default=None)
    trained_at: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    training: Mapped[bool] = mapped_column(Boolean, default=False)
    # The training job's lease (service/training.py): which process holds it (host, pid and a
    # random part) and until when; NULL owner or a past expiry: any process may claim it.
    training_owner: Mapped[str | None] = mapped_column(String(128), default=None)
    training_lease_until: Mapped[datetime | None] = mapped_column(DateTime(), default=None)
    snapshot_version: Mapped[int] = mapped_column(Integer, default=0)
    trained_watermark: Mapped[int | None] = mapped_column(Integer, default=None)
    # Train requests so far: a job that finds the count moved while it ran (another process was
    # asked while this one held the job) leaves the collection marked for one more run.
    train_requests: Mapped[int] = mapped_column(Integer, default=0)
    # The approximate index built for the snapshot by an in-process gallery (index/ann.py): its
    # file in the data folder; NULL when the snapshot is searched exactly or by the database.
    index_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # The deletion log (SnapshotRemoval) holds every removal after this revision; training
    # prunes the older ones. An index made for an earlier snapshot cannot be updated (its
    # removals are gone) and is built anew. NULL: nothing pruned yet.
    removals_logged_after: Mapped[int | None] = mapped_column(Integer, default=None)
    # What training computed for identify's decision (service/decision.py): the snapshot's size
    # (enrollments and embeddings of the running recipe), the threshold on the score for the
    # target FPIR it was computed for (NULL: the fixed fallback), the expected TPIR there, and
    # the warning when that TPIR is low.
    trained_people: Mapped[int | None] = mapped_column(Integer, default=None)
    trained_embeddings: Mapped[int | None] = mapped_column(Integer, default=None)
    identify_threshold: Mapped[float | None] = mapped_column(Float, default=None)
    identify_target_fpir: Mapped[float | None] = mapped_column(Float, default=None)
    identify_expected_tpir: Mapped[float | None] = mapped_column(Float, default=None)
    identify_warning: Mapped[str | None] = mapped_column(Text, default=None)


class Enrollment(Base):
    __tablename__ = "enrollments"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(Text, default=None)
    created: Mapped[datetime] = mapped_column(DateTime())
    updated: Mapped[datetime] = mapped_column(DateTime())


class Embedding(Base):
    """One face descriptor per enrolled image, with its recipe.

    ``vector`` reads and writes as little-endian float32 bytes; PostgreSQL stores it as a
    pgvector ``vector`` (searched there by an HNSW index per recipe), SQLite as a blob.
    ``recipe`` is the embedding space (``Recipe.key``: recogniser, version, alignment): only
    descriptors of one recipe are compared. ``tta`` is the test-time augmentation that averaged
    it (provenance; empty for rows older than the column). Ids only grow (AUTOINCREMENT on
    SQLite, a sequence on PostgreSQL): a snapshot's watermark must never admit a later row
    that reused a deleted row's id.
    """

    __tablename__ = "embeddings"
    __table_args__ = (
        Index("ix_embeddings_enrollment_position", "enrollment_id", "position"),
        Index("ix_embeddings_recipe", "recipe"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[str] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(VectorBytes)
    recipe: Mapped[str] = mapped_column(String(96))
    tta: Mapped[str | None] = mapped_column(String(16), default=None)
    # The enrolled image, only when settings.store_images is on.
    image: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created: Mapped[datetime] = mapped_column(DateTime())


class CollectionMember(Base):
    """``added_revision`` is the collection's revision that the addition made: a snapshot taken
    at an older revision does not hold the member (indexed with the collection: training reads
    the members added since its previous snapshot; and by the order the listing pages them)."""

    __tablename__ = "collection_members"
    __table_args__ = (
        Index("ix_collection_members_collection_revision", "collection_id", "added_revision"),
        # The listing's order: a page of a large collection's members is read off the index.
        Index("ix_collection_members_collection_added", "collection_id", "added", "enrollment_id"),
    )

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    enrollment_id: Mapped[str] = mapped_column(
        ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added: Mapped[datetime] = mapped_column(DateTime())
    added_revision: Mapped[int] = mapped_column(Integer, default=0)


class SnapshotRemoval(Base):
    """An embedding that left a collection (its enrollment was deleted), at the collection's
    revision that the deletion made: what training removes from the previous snapshot's index
    without reading every member again (store/snapshot.py). Only ids, never vectors; the rows
    a training has folded in are pruned by the training after it."""

    __tablename__ = "snapshot_removals"
    # A search asks for the removals after its snapshot's revision (index/reads.py).
    __table_args__ = (
        Index("ix_snapshot_removals_collection_revision", "collection_id", "removed_revision"),
    )

    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    embedding_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    removed_revision: Mapped[int] = mapped_column(Integer)


class SpoofCheck(Base):
    """The record behind spdetect's ``key``: who asked, when, and what was answered."""

    __tablename__ = "spoof_checks"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(8))
    score: Mapped[float] = mapped_column(Float)
    created: Mapped[datetime] = mapped_column(DateTime())


class RateLimitWindow(Base):
    """Requests a key made in one rate-limit window, shared by every process (service/ratelimit).

    ``window_start`` is the window's first second since the epoch: windows are compared and
    pruned arithmetically, and an integer is the same on every backend. No foreign key to
    ``api_keys``: the row is written on the request path and pruned within two minutes anyway.
    """

    __tablename__ = "rate_limits"

    key_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    window_start: Mapped[int] = mapped_column(Integer, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer)
