"""Group commit: every event is on disk before its request is answered.

Request handlers call ``await recorder.record(row)``. Rows queue in memory;
the writer takes everything queued, inserts it in one transaction, commits,
and only then wakes the handlers of that batch. While it commits, the next
batch gathers, so under load a commit carries hundreds of rows and costs one
log append (and one fsync with SQLite ``synchronous=FULL``); when idle a lone
hit is committed at once, with no timer to wait for.

In the same transaction the writer merges the batch into the ``recipients``
projection (``store.projection``); after the commit it hands the batch to its
``listeners`` (live streams, webhooks).

The insert goes through the driver's ``executemany`` rather than SQLAlchemy's
statement compiler: at tens of thousands of hits a second the compiler's
per-row cost would be most of the budget. ``INSERT ... ON CONFLICT DO NOTHING``
makes a repeated caller ``event_id`` a no-op instead of failing its batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, overload

from sqlalchemy import Engine

from mailbeacon.store.engine import is_sqlite
from mailbeacon.store.group import GroupCommit, W, Waiter

__all__ = ["EVENT_ORDER_LOCK", "EventRow", "Recorder"]

log = logging.getLogger("mailbeacon.recorder")


class EventRow(NamedTuple):
    """One event as the recorder writes it (the columns of ``mb_events`` but ``seq``)."""

    account_id: str
    message_id: str
    recipient: str
    type: str
    at: float
    link: int | None = None
    url: str | None = None
    classification: str = "unknown"
    reasons: str = ""
    confidence: float = 0.0
    method: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    headers: str | None = None
    event_id: str | None = None
    detail: str | None = None


_COLUMNS = ", ".join(EventRow._fields)
# PostgreSQL types of EventRow's fields, for binary COPY.
_COPY_TYPES = [
    {"at": "float8", "confidence": "float8", "link": "int4"}.get(name, "text") for name in EventRow._fields
]

# PostgreSQL hands out ``seq`` at insert time, and two writers of events (the ingester and an
# API process, or two nodes) may commit in the other order: a reader that follows ``seq``
# (live streams, ``server.stream``) would read the later row, move past it and never see the
# earlier one. Every transaction that inserts events takes this lock before its first write
# and holds it to its commit, so ``seq`` order is commit order. It costs one statement a
# batch. SQLite's single writer lock gives the same order by itself.
EVENT_ORDER_LOCK = "SELECT pg_advisory_xact_lock(7881967187234483828)"  # b"mb_event"


def _insert_sql(engine: Engine) -> str:
    marks = ", ".join(["?" if is_sqlite(engine) else "%s"] * len(EventRow._fields))
    return f"INSERT INTO mb_events ({_COLUMNS}) VALUES ({marks}) ON CONFLICT DO NOTHING"  # noqa: S608


class Recorder:
    """The single writer of events for this process.

    The writes run on the event loop itself, not in a thread: a flush is
    scheduled with ``call_soon`` when the first row of a batch arrives, so every
    request that reached the loop in the same turn joins that batch, and the
    commit blocks the loop for about a millisecond. A writer thread measured
    about five times slower here: each row of an ``executemany`` hands the GIL
    back and forth with the busy event loop.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        project: Callable[[Any, Sequence[EventRow]], None] | None = None,
        max_batch: int = 5000,
    ) -> None:
        self._engine = engine
        self._sql = _insert_sql(engine)
        # PostgreSQL: rows without an event_id (every hit) go in by COPY. The statement's
        # ON CONFLICT guards only the unique event_id index, which a NULL never meets, and
        # COPY took ~4-8 µs a row against executemany's ~16-18 (benchmarks, same database), and
        # binary COPY ~1.5 µs less of the ingester's than text (paired benchmarks/ingest.py runs).
        self._copy = None if is_sqlite(engine) else f"COPY mb_events ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        self._order = None if is_sqlite(engine) else EVENT_ORDER_LOCK
        self._project = project
        self._group = GroupCommit(self.write, max_batch=max_batch)
        self._connection: Any = None
        self.listeners: list[Callable[[Sequence[EventRow]], None]] = []
        # In-transaction step with ``before(cursor, rows)`` and ``after(cursor, noted)``: the webhook outbox.
        self.outbox: Any = None
        # Plain counters, read by /metrics.
        self.batches = 0
        self.rows = 0
        self.failures = 0
        self.commit_seconds = 0.0

    def start(self) -> None:
        self._connection = self._engine.raw_connection()
        self._group.closed = False

    @property
    def queued(self) -> int:
        return self._group.queued

    @overload
    def record(self, row: EventRow) -> asyncio.Future[bool]: ...

    @overload
    def record(self, row: EventRow, waiter: W) -> W: ...

    def record(self, row: EventRow, waiter: Waiter | None = None) -> Waiter:
        """Queue ``row``; the future (or ``waiter``, see ``store.group``) gets True once it is
        committed, False if the write failed."""
        return self._group.submit(row) if waiter is None else self._group.submit(row, waiter)

    def flush(self) -> None:
        """Commit everything queued (runs on the loop; also called on shutdown)."""
        self._group.flush()

    def stop(self) -> None:
        """Commit what is queued, then close the connection (graceful shutdown)."""
        self._group.closed = True
        if self._connection is not None:
            self._group.flush()
            self._connection.close()
            self._connection = None

    def write(self, rows: Sequence[EventRow], extra: Callable[[Any], None] | None = None) -> bool:
        """Commit ``rows`` now, in one transaction with ``extra(cursor)`` (the ingester's offsets).

        Synchronous: the group commit calls it with each batch; the ingester (``store.ingest``)
        calls it directly. Request handlers ``await record(row)`` instead.
        """
        rows = list(rows)
        started = time.perf_counter()
        ok = self._write(rows, extra)
        self.commit_seconds += time.perf_counter() - started
        if ok:
            self.batches += 1
            self.rows += len(rows)
            self._after_commit(rows)
        return ok

    def _write(self, rows: list[EventRow], extra: Callable[[Any], None] | None = None) -> bool:
        connection = self._connection
        for attempt in (1, 2):
            try:
                cursor = connection.cursor()
                if self._order is not None:
                    cursor.execute(self._order)
                noted = self.outbox.before(cursor, rows) if self.outbox is not None else None
                self._insert(cursor, rows)
                if self._project is not None:
                    self._project(cursor, rows)  # same transaction: status never lags the events
                if extra is not None:
                    extra(cursor)
                if noted is not None:
                    self.outbox.after(cursor, noted)  # same transaction: no event without its deliveries
                cursor.close()
                connection.commit()
                return True
            except Exception:
                _rollback(connection)
                log.exception("event batch of %d rows not committed (attempt %d)", len(rows), attempt)
        self.failures += len(rows)
        return False

    def _insert(self, cursor: Any, rows: list[EventRow]) -> None:
        if self._copy is not None and all(row.event_id is None for row in rows):
            with cursor.copy(self._copy) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            return
        cursor.executemany(self._sql, rows)

    def _after_commit(self, rows: list[EventRow]) -> None:
        for step in self.listeners:
            try:
                step(rows)
            except Exception:  # a listener's bug must not stop the recorder
                log.exception("after-commit step %r failed for %d events", step, len(rows))


def _rollback(connection: Any) -> None:
    try:
        connection.rollback()
    except Exception:
        log.exception("rollback failed")
