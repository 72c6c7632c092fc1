"""The campaign index holds only messages that have a campaign.

Every first hit of an offline-minted link adds a message row without a campaign, and with
it an index entry that no query reads: the campaign filter (``campaign = X``) implies that
the campaign is set, on SQLite and PostgreSQL alike, so both use the partial index for it.
One index entry less for each such hit (~2-3 µs of PostgreSQL's CPU in isolation).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_NAME = "ix_mb_messages_campaign"
_COLUMNS = ["account_id", "campaign"]


def upgrade() -> None:
    has_campaign = sa.column("campaign").isnot(None)
    op.drop_index(_NAME, table_name="mb_messages")
    op.create_index(_NAME, "mb_messages", _COLUMNS, sqlite_where=has_campaign, postgresql_where=has_campaign)


def downgrade() -> None:
    op.drop_index(_NAME, table_name="mb_messages")
    op.create_index(_NAME, "mb_messages", _COLUMNS)
