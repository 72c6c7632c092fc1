"""The tables. Every row belongs to one account; every query filters on it.

Times are Unix seconds as floating point (``at``, ``created_at``): one type
that SQLite and PostgreSQL compare and index alike; the API formats them as
RFC 3339 in UTC. ``events`` is append-only and its ``seq`` is the order of
record (what streams resume from and webhooks are keyed on). ``recipients``
is a projection of the events (``core.status``) that the recorder updates
in the same transaction as the events; it can always be rebuilt from them.

The schema itself is created and changed only by the Alembic migrations in
``store/migrations``; this module describes it for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "accounts",
    "api_keys",
    "events",
    "hitlog_positions",
    "links",
    "message_tags",
    "messages",
    "meta",
    "metadata",
    "recipients",
]

metadata = MetaData()

# A 64-bit sequence on PostgreSQL; SQLite only auto-increments "INTEGER PRIMARY KEY".
_Seq = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "mb_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

accounts = Table(
    "mb_accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

api_keys = Table(
    "mb_api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("mb_accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the whole key
    Column("hint", String(16), nullable=False),  # the first characters, to tell keys apart in lists
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

messages = Table(
    "mb_messages",
    metadata,
    Column("account_id", String(32), ForeignKey("mb_accounts.id"), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("subject", Text),
    Column("campaign", String(200)),
    Column("metadata", JSON),
    Column("created_at", Float, nullable=False),
    Column("registered", Boolean, nullable=False),  # False: first seen through an offline-minted link
    Index("ix_mb_messages_created", "account_id", "created_at"),
    Index("ix_mb_messages_campaign", "account_id", "campaign"),
)

message_tags = Table(
    "mb_message_tags",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Index("ix_mb_message_tags_tag", "account_id", "tag"),
)

links = Table(
    "mb_links",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("url", Text, nullable=False),
)

recipients = Table(
    "mb_recipients",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("message_id", String(128), primary_key=True),
    Column("recipient", String(320), primary_key=True),  # "" when the link carried none
    Column("status", String(16), nullable=False),
    Column("status_rank", Integer, nullable=False),  # core.status.rank(status): what the SQL merge compares
    Column("sent_at", Float),
    Column("delivered_at", Float),
    Column("first_fetched_at", Float),
    Column("first_open_at", Float),
    Column("first_human_open_at", Float),
    Column("first_click_at", Float),
    Column("unsubscribed_at", Float),
    Column("complained_at", Float),
    Index("ix_mb_recipients_status", "account_id", "status"),
    Index("ix_mb_recipients_recipient", "account_id", "recipient"),
)

events = Table(
    "mb_events",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("account_id", String(32), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("type", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("link", Integer),
    Column("url", Text),
    Column("classification", String(8), nullable=False),
    Column("reasons", Text, nullable=False),  # space-separated machine-readable reasons
    Column("confidence", Float, nullable=False),
    Column("method", String(8)),
    Column("ip", String(64)),
    Column("user_agent", Text),
    Column("headers", Text),  # JSON object of the headers classification reads, when kept
    Column("event_id", String(200)),  # the caller's idempotency key (API-reported events)
    Column("detail", Text),  # JSON object the caller attached (bounce reason, ...)
    Index("ix_mb_events_message", "account_id", "message_id", "seq"),
    Index(
        "ux_mb_events_event_id",
        "account_id",
        "message_id",
        "event_id",
        unique=True,
        sqlite_where=Column("event_id").isnot(None),
        postgresql_where=Column("event_id").isnot(None),
    ),
)

# Read position of each hit log file (store.hitlog), committed with the events read from it.
hitlog_positions = Table(
    "mb_hitlog",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)
