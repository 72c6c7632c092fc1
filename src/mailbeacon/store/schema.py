"""The tables. Every row belongs to one account; every query filters on it.

Times are Unix seconds as floating point (``at``, ``created_at``): one type
that SQLite and PostgreSQL compare and index alike; the API formats them as
RFC 3339 in UTC. ``events`` is append-only and its ``seq`` is the order of
record (what streams resume from and webhooks are keyed on). ``recipients``
is a projection of the events (``core.status``) that the recorder updates
in the same transaction as the events; it can always be rebuilt from them.

The schema itself is created and changed only by the Alembic migrations in
``store/migrations``; this module describes it for queries. On PostgreSQL every
``String`` (``varchar``) column compares byte by byte (collation "C", migration 0006),
as SQLite's do by default: they hold identifiers and codes, and byte order is both
cheaper in an index and the same on the two databases.
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
    UniqueConstraint,
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
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
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
    # No foreign key to mb_accounts (migration 0005 says why): every writer checks the account.
    Column("account_id", String(32), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("subject", Text),
    Column("campaign", String(200)),
    Column("metadata", JSON),
    Column("created_at", Float, nullable=False),
    Column("registered", Boolean, nullable=False),  # False: first seen through an offline-minted link
    Index("ix_mb_messages_created", "account_id", "created_at"),
    Index(
        "ix_mb_messages_campaign",
        "account_id",
        "campaign",
        sqlite_where=Column("campaign").isnot(None),
        postgresql_where=Column("campaign").isnot(None),
    ),
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

# -- webhooks (migration 0003) ------------------------------------------------------------------
# An endpoint's deliveries form the outbox: one row per (endpoint, event), written by the
# recorder in the transaction that records the event. ``id`` is the ``webhook-id`` every
# attempt of that delivery carries. ``state`` is pending → delivered | failed; a claimed row
# stays pending with ``next_at`` pushed past the attempt's deadline (a lease), so a worker
# that dies mid-send leaves it to be claimed again.

webhook_endpoints = Table(
    "mb_webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("types", Text, nullable=False),  # space-separated event types; "" means all
    Column("campaign", String(200)),  # only messages of this campaign, when set
    Column("description", Text),
    Column("secret", String(100), nullable=False),  # whsec_...
    Column("old_secret", String(100)),  # still signed with until old_secret_until (rotation overlap)
    Column("old_secret_until", Float),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("failing_since", Float),  # first failure since the last success
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

webhook_deliveries = Table(
    "mb_webhook_deliveries",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("account_id", String(32), nullable=False),
    Column("endpoint_id", String(32), nullable=False),
    Column("event_seq", _Seq),  # NULL for test events, which carry their own payload
    Column("payload", Text),
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    UniqueConstraint("endpoint_id", "event_seq", name="ux_mb_webhook_deliveries_event"),
    Index("ix_mb_webhook_deliveries_due", "state", "next_at"),
)

webhook_attempts = Table(
    "mb_webhook_attempts",
    metadata,
    Column("seq", _Seq, primary_key=True, autoincrement=True),
    Column("account_id", String(32), nullable=False),
    Column("endpoint_id", String(32), nullable=False),
    Column("delivery_id", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration", Float, nullable=False),
    Index("ix_mb_webhook_attempts_endpoint", "endpoint_id", "seq"),
)
