"""mb_messages.account_id without a foreign key to mb_accounts.

On PostgreSQL the key is checked by a trigger per inserted row, and the ingester inserts a
message row for every offline-minted link's first hit. ``benchmarks/ingest.py`` with and
without the key, alternated, measured 2-8 µs less PostgreSQL CPU a hit without it (of ~20-30),
on a two-core machine where that CPU is taken from the tracking server. Every writer already
knows the account exists: the tracking endpoints record a hit only for a known account
(``TrackingEndpoints._record``), the API only for the caller's own, and accounts are never
deleted. The other account-scoped tables (recipients, events, webhooks) never had the key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite's key has no name: batch mode names it by this convention to drop it (rebuilding the table).
_SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_KEY = "fk_mb_messages_account_id_mb_accounts"
_POSTGRES_KEY = "mb_messages_account_id_fkey"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(_POSTGRES_KEY, "mb_messages", type_="foreignkey")
        return
    with op.batch_alter_table("mb_messages", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(_SQLITE_KEY, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_foreign_key(_POSTGRES_KEY, "mb_messages", "mb_accounts", ["account_id"], ["id"])
        return
    with op.batch_alter_table("mb_messages", naming_convention=_SQLITE_NAMES) as batch:
        batch.create_foreign_key(_SQLITE_KEY, "mb_accounts", ["account_id"], ["id"])
