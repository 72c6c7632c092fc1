"""What the classifier keeps per message and event: nothing new in the schema.

The classification work needed no new column: verdicts already live in
``mb_events`` (classification, reasons, confidence), both ``first_fetched_at``
and ``first_human_open_at`` in ``mb_recipients``, and a honeypot click is
marked in its event's ``detail`` (``{"honeypot": true}``). The revision stays
so that 0003 chains after it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
