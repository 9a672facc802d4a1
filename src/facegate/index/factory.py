"""The gallery for a deployment, chosen by its database URL."""

from __future__ import annotations

from facegate.config import Settings
from facegate.index.gallery import InProcessGallery
from facegate.index.pgvector import PgvectorGallery
from facegate.index.postgres import PostgresGallery
from facegate.service.ports import Gallery
from facegate.store.db import Database


def make_gallery(settings: Settings, database: Database) -> Gallery:
    """PostgreSQL: each machine's in-process index in front of pgvector (index/postgres.py), or
    pgvector alone when ``postgres_local_index`` is off; any other store is searched in
    process (index files in the data folder, shared by the processes of one machine)."""
    if database.engine.dialect.name == "postgresql":
        if settings.postgres_local_index:
            return PostgresGallery(database, settings)
        return PgvectorGallery(database)
    return InProcessGallery(database, settings)
