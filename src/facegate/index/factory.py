"""The gallery for a deployment, chosen by its database URL."""

from __future__ import annotations

from facegate.config import Settings
from facegate.index.gallery import InProcessGallery
from facegate.index.pgvector import PgvectorGallery
from facegate.service.ports import Gallery
from facegate.store.db import Database


def make_gallery(settings: Settings, database: Database) -> Gallery:
    """PostgreSQL searches in the database (pgvector; every process and machine shares it);
    any other store is searched in process (index files in the data folder, shared by the
    processes of one machine)."""
    if database.engine.dialect.name == "postgresql":
        return PgvectorGallery(database)
    return InProcessGallery(database, settings)
