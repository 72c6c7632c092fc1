"""Webhook endpoints, their outbox (deliveries) and delivery attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mb_webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False, index=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("types", sa.Text, nullable=False),
        sa.Column("campaign", sa.String(200)),
        sa.Column("description", sa.Text),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("old_secret", sa.String(100)),
        sa.Column("old_secret_until", sa.Float),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("failing_since", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "mb_webhook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("endpoint_id", sa.String(32), nullable=False),
        sa.Column("event_seq", _seq),
        sa.Column("payload", sa.Text),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.UniqueConstraint("endpoint_id", "event_seq", name="ux_mb_webhook_deliveries_event"),
    )
    op.create_index("ix_mb_webhook_deliveries_due", "mb_webhook_deliveries", ["state", "next_at"])
    op.create_table(
        "mb_webhook_attempts",
        sa.Column("seq", _seq, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("endpoint_id", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration", sa.Float, nullable=False),
    )
    op.create_index("ix_mb_webhook_attempts_endpoint", "mb_webhook_attempts", ["endpoint_id", "seq"])


def downgrade() -> None:
    op.drop_table("mb_webhook_attempts")
    op.drop_table("mb_webhook_deliveries")
    op.drop_table("mb_webhook_endpoints")
