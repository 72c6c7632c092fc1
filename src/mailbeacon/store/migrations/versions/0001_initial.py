"""The first schema: accounts, API keys, messages, links, recipients, events.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_event_id_set = sa.text("event_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "mb_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "mb_accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "mb_api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), sa.ForeignKey("mb_accounts.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
    )
    op.create_table(
        "mb_messages",
        sa.Column("account_id", sa.String(32), sa.ForeignKey("mb_accounts.id"), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("campaign", sa.String(200)),
        sa.Column("metadata", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("registered", sa.Boolean, nullable=False),
    )
    op.create_index("ix_mb_messages_created", "mb_messages", ["account_id", "created_at"])
    op.create_index("ix_mb_messages_campaign", "mb_messages", ["account_id", "campaign"])
    op.create_table(
        "mb_message_tags",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_mb_message_tags_tag", "mb_message_tags", ["account_id", "tag"])
    op.create_table(
        "mb_links",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
    )
    _create_recipients()
    _create_events()


def _create_recipients() -> None:
    times = [
        "sent_at",
        "delivered_at",
        "first_fetched_at",
        "first_open_at",
        "first_human_open_at",
        "first_click_at",
        "unsubscribed_at",
        "complained_at",
    ]
    op.create_table(
        "mb_recipients",
        sa.Column("account_id", sa.String(32), primary_key=True),
        sa.Column("message_id", sa.String(128), primary_key=True),
        sa.Column("recipient", sa.String(320), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_rank", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Float) for name in times),
    )
    op.create_index("ix_mb_recipients_status", "mb_recipients", ["account_id", "status"])
    op.create_index("ix_mb_recipients_recipient", "mb_recipients", ["account_id", "recipient"])


def _create_events() -> None:
    op.create_table(
        "mb_events",
        sa.Column("seq", _seq, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("link", sa.Integer),
        sa.Column("url", sa.Text),
        sa.Column("classification", sa.String(8), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("method", sa.String(8)),
        sa.Column("ip", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.Column("headers", sa.Text),
        sa.Column("event_id", sa.String(200)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_mb_events_message", "mb_events", ["account_id", "message_id", "seq"])
    op.create_index(
        "ux_mb_events_event_id",
        "mb_events",
        ["account_id", "message_id", "event_id"],
        unique=True,
        sqlite_where=_event_id_set,
        postgresql_where=_event_id_set,
    )


def downgrade() -> None:
    for table in (
        "mb_events",
        "mb_recipients",
        "mb_links",
        "mb_message_tags",
        "mb_messages",
        "mb_api_keys",
        "mb_accounts",
        "mb_meta",
    ):
        op.drop_table(table)
