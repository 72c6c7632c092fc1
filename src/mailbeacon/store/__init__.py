"""The store: the only package that imports SQLAlchemy.

``Store.open(url)`` gives one object holding the engine and the parts that
use it: ``accounts``, ``messages``, ``stats``, the group-commit ``recorder``
the status ``projector`` and the
``reviser`` that re-reads a message's hits after each commit. SQLite (``sqlite:///path``) is the embedded
default; PostgreSQL (``postgresql://...``) serves several nodes.
"""

from __future__ import annotations

from pathlib import Path

from mailbeacon.store.accounts import Account, AccountStore, ApiKeyInfo, DuplicateAccount
from mailbeacon.store.deliveries import Attempt, Claimed, DeliveryStore, Finished
from mailbeacon.store.engine import make_engine
from mailbeacon.store.ingest import Ingester
from mailbeacon.store.messages import (
    BadCursor,
    DuplicateMessage,
    EventView,
    MessageFilter,
    MessageRecord,
    MessageStore,
    MessageView,
)
from mailbeacon.store.migrate import upgrade
from mailbeacon.store.projection import Projector
from mailbeacon.store.recorder import EventRow, Recorder
from mailbeacon.store.revision import Reviser
from mailbeacon.store.stats import StatsFilter, StatsStore
from mailbeacon.store.webhooks import Endpoint, EndpointStore, OutboxWriter

__all__ = [
    "Account",
    "ApiKeyInfo",
    "Attempt",
    "BadCursor",
    "Claimed",
    "DuplicateAccount",
    "DuplicateMessage",
    "Endpoint",
    "EventRow",
    "EventView",
    "Finished",
    "MessageFilter",
    "MessageRecord",
    "MessageView",
    "Reviser",
    "StatsFilter",
    "Store",
]


class Store:
    """Everything persistent, over one engine."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "full") -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous=sqlite_synchronous)
        self.accounts = AccountStore(self.engine)
        self.messages = MessageStore(self.engine)
        self.stats = StatsStore(self.engine)
        self.projector = Projector(self.engine.dialect.name)
        self.recorder = Recorder(self.engine, project=self.projector)
        # Revises a message's stored hits after each commit, once a classifier is set.
        self.reviser = Reviser(self.engine, self.projector)
        self.recorder.listeners.append(self.reviser)
        self.endpoints = EndpointStore(self.engine)
        self.deliveries = DeliveryStore(self.engine)
        self.recorder.outbox = self.messages.outbox = OutboxWriter(self.engine, self.endpoints)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> None:
        """Apply the migrations (idempotent)."""
        upgrade(self.engine)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def ingester(self, directory: Path) -> Ingester:
        """An ingester of the hit log files in ``directory`` into this store (``store.ingest``)."""
        return Ingester(self.recorder, self.engine, directory)

    def start(self) -> None:
        """Start the recorder and the reviser's thread."""
        self.recorder.start()
        self.reviser.start()

    def close(self) -> None:
        """Flush queued events, then release connections."""
        self.recorder.stop()
        self.reviser.stop()
        self.engine.dispose()
