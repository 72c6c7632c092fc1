"""Alembic environment: migrations run on a connection the store hands over.

``mailbeacon db upgrade`` and server start call ``store.migrate.upgrade``,
which passes its connection in ``config.attributes["connection"]``; there is no
alembic.ini, so nothing here reads a file or the environment.
"""

from __future__ import annotations

from alembic import context

from mailbeacon.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
