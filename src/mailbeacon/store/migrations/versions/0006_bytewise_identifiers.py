"""Identifier columns compare byte by byte on PostgreSQL (collation "C").

Every ``varchar`` column of the schema holds an identifier or a code (account, message,
recipient address, event type, status, campaign, tag, key hash), never prose to sort for a
reader. Under the database's default collation (a libc locale such as ``en_US.UTF-8``, or
``C.UTF-8`` here) each comparison in an index goes through ``strcoll``: profiles of the
ingester's backend put ~15 % of its CPU there, and ``benchmarks/ingest.py`` runs alternated
with and without this change measured about a fifth less PostgreSQL CPU a hit with it. It
also ends two other differences: SQLite (``BINARY``) already compares these columns byte by
byte, so lists ordered by an id or a recipient come out in the same order on both; and an
index of byte-ordered keys does not silently go stale when a libc upgrade changes a
locale's sort order, as PostgreSQL's documentation warns that linguistic ones can.

All of them change in one go: PostgreSQL refuses to compare two columns of different
collations, and the queries join these columns with each other. Free-text columns
(``text``: subjects, URLs, user agents) keep the database's collation. Changing a column's
collation keeps the table's rows in place; PostgreSQL rebuilds the indexes on it, so on a
large existing database this migration takes as long as building those indexes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Every varchar column of revision 0005, with its length.
IDENTIFIERS: dict[str, dict[str, int]] = {
    "mb_meta": {"key": 64},
    "mb_accounts": {"id": 32, "name": 200},
    "mb_api_keys": {"id": 32, "account_id": 32, "name": 200, "key_hash": 64, "hint": 16},
    "mb_messages": {"account_id": 32, "id": 128, "channel": 16, "campaign": 200},
    "mb_message_tags": {"account_id": 32, "message_id": 128, "tag": 100},
    "mb_links": {"account_id": 32, "message_id": 128},
    "mb_recipients": {"account_id": 32, "message_id": 128, "recipient": 320, "status": 16},
    "mb_events": {
        "account_id": 32,
        "message_id": 128,
        "recipient": 320,
        "type": 16,
        "classification": 8,
        "method": 8,
        "ip": 64,
        "event_id": 200,
    },
    "mb_hitlog": {"name": 100},
    "mb_webhook_endpoints": {
        "id": 32,
        "account_id": 32,
        "campaign": 200,
        "secret": 100,
        "old_secret": 100,
    },
    "mb_webhook_deliveries": {"id": 32, "account_id": 32, "endpoint_id": 32, "state": 12},
    "mb_webhook_attempts": {"account_id": 32, "endpoint_id": 32, "delivery_id": 32},
}


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's default collation, BINARY, is byte order already
    for table, columns in IDENTIFIERS.items():
        changes = ", ".join(
            f'ALTER COLUMN {name} TYPE varchar({length}) COLLATE "{collation}"'
            for name, length in columns.items()
        )
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
