"""The persistent store: SQLAlchemy 2 models, the database handle and its migrations.

SQLite in WAL mode is the embedded default; the same models run on PostgreSQL so that several
API processes can share one store.
"""

from facegate.store.db import Database

__all__ = ["Database"]
