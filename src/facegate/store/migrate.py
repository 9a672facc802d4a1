"""Run the Alembic migrations shipped inside the package (at start-up and before key commands)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine

# Any constant works: it only has to be the same in every facegate process sharing a database.
_MIGRATION_LOCK_ID = 0x66616365  # "face"


def alembic_config() -> Config:
    root = resources.files("facegate.store")
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    return config


def upgrade_to_head(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several API processes may start at once against one database: one migrates,
            # the others wait for it and then find nothing left to do.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        # env.py uses this connection instead of building its own engine from a URL.
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
