"""Schema migrations (Alembic), applied on server start and by ``mailbeacon db upgrade``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["upgrade"]

_SCRIPTS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x6D62_6561  # "mbea": one node migrates at a time on PostgreSQL


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; safe to call on every start and from several nodes."""
    # Imported here: Alembic (with Mako and Pygments) is ~10 MB that a server worker, which
    # never migrates (serve's ingester process does, before the workers start), does not load.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
