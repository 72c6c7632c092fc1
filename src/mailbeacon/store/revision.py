"""Revision: what later evidence says about a message's stored opens and clicks.

A hit is classified on its own at request time, without a database read: the
server does not know when the message was sent or delivered, nor what the
message's other hits looked like. Right after each commit the recorder hands
the batch to the ``Reviser`` (an after-commit listener, so the request path
pays only for a set insert); its thread, or the ingester process in its lulls
(``run_pending``), re-reads the touched messages in chunks, runs
``Classifier`` over all of its hits with the recipient's ``sent_at`` and
``delivered_at`` (``core.classify.behaviour``: timing, bursts over links, a
honeypot exposing the same client's other clicks, a person's click confirming
an open), updates the events whose verdict changed and rebuilds the
recipients' status from the events (``Projector.rebuild``), so a status can
move back when an open turns out to be a machine.

The common case changes nothing and costs its share of one read per chunk
(``revise_many``). When something changed,
the message is locked first (an UPDATE of its recipients rows that changes no
value: a row lock on PostgreSQL, the write lock on SQLite) and read again, so
a hit committed meanwhile is either in what is rebuilt or merged on top of it
by the recorder afterwards, never overwritten.

Hits whose request facts were not kept (privacy level ``minimal``) keep their
request-time verdict; only the per-message evidence is applied to them.
``mailbeacon reclassify`` runs the same revision over stored messages.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Engine, bindparam, select

from mailbeacon.core.classify import Assessment, Classifier
from mailbeacon.core.classify.behaviour import revise
from mailbeacon.core.events import Classification, RequestFacts, Verdict
from mailbeacon.store.projection import Projector
from mailbeacon.store.recorder import EventRow
from mailbeacon.store.revision_queue import RevisionQueue
from mailbeacon.store.schema import events, recipients

__all__ = ["Reviser", "revise_rows", "stored_messages"]

log = logging.getLogger("mailbeacon.revision")

_KIND_OF: Final = {"opened": "open", "clicked": "click", "unsubscribed": "unsubscribe"}
_TRIGGERS: Final = frozenset({*_KIND_OF, "delivered"})  # a delivery time moves every timing rule
_COLUMNS: Final = (
    "seq",
    "type",
    "at",
    "recipient",
    "link",
    "classification",
    "reasons",
    "confidence",
    "method",
    "ip",
    "user_agent",
    "headers",
    "detail",
)

Key = tuple[str, str]
_CHUNK: Final = 500  # messages per revision read: SQLite allows 32,766 parameters, PostgreSQL 65,535
Times = Mapping[str, tuple[float | None, float | None]]


class Reviser:
    """Revises the messages of committed batches on a thread of its own."""

    def __init__(self, engine: Engine, projector: Projector) -> None:
        self._engine = engine
        self._projector = projector
        self.classifier: Classifier | None = None  # set by the server; None: nothing to revise with
        self._pending = RevisionQueue()  # touched messages: a bounded set, spilling to a file
        self._next_round = 0.0  # run_pending's settle
        self._busy = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Plain counters, read by /metrics and the tests.
        self.messages = 0
        self.changed = 0
        self.failures = 0

    def __call__(self, rows: Sequence[EventRow]) -> None:
        """The recorder's after-commit listener (on the event loop: no I/O here)."""
        if self.classifier is None:
            return
        # Interned: under load the queue holds a key per message hit since the last lull (it
        # is revised in lulls), and every decoded row carries its own copy of the account id.
        keys = {(sys.intern(row.account_id), row.message_id) for row in rows if row.type in _TRIGGERS}
        if keys:
            with self._wake:
                self._pending.add(keys)
                self._wake.notify()

    def run_pending(self, budget: float, settle: float = 0.0) -> bool:
        """Revise queued messages on the caller's thread for about ``budget`` seconds; False if none.

        ``settle``: after a round that emptied the queue, the next starts no sooner than this
        many seconds later, so a message hit many times in a row is read once per ``settle``
        rather than once per lull. Measured (benchmarks/webhooks.py, 200 hits/s on 49
        messages): without it, re-reading the growing messages took ~0.3 of the ingester's
        ~0.5 cores.

        The ingester calls this when a round found nothing to ingest, instead of running the
        thread: on a thread of its own under load revision took the GIL from the ingester's
        inserts (ingesting slowed to ~600 rows/s after a burst). Revision lags under load and
        catches up in the lulls. Messages are read in chunks (``revise_many``): one read per
        message was half the ingester's time under a load of distinct messages.
        """
        now = time.monotonic()
        if now < self._next_round:
            return False
        deadline = now + budget
        did = False
        while time.monotonic() < deadline:
            with self._wake:
                chunk = self._pending.take(_CHUNK)
            if not chunk:
                if did:
                    self._next_round = time.monotonic() + settle
                return did
            self.revise_many(chunk)
            did = True
        return did

    def revise_many(self, keys: Sequence[Key]) -> int:
        """Revise ``keys`` with one read per account; the few that change take ``revise_message``.

        Returns how many events changed. A message whose read fails is retried on its own.
        """
        if self.classifier is None:
            raise RuntimeError("no classifier: the server sets Store.reviser.classifier")
        by_account: dict[str, list[str]] = {}
        for account_id, message_id in keys:
            by_account.setdefault(account_id, []).append(message_id)
        changing: list[Key] = []
        try:
            with self._engine.connect() as connection:
                for account_id, message_ids in by_account.items():
                    read = _read_messages(connection, account_id, message_ids)
                    for message_id in message_ids:
                        times, rows = read.get(message_id, ({}, []))
                        if _changes_in(self.classifier, rows, times):
                            changing.append((account_id, message_id))
                        else:
                            self.messages += 1
        except Exception:
            log.exception("revision read of %d messages failed; revising them one by one", len(keys))
            changing = list(keys)
        changed = 0
        for account_id, message_id in changing:
            changed += self._revise_logged(account_id, message_id)
        return changed

    def start(self, *, thread: bool = True) -> None:
        if not thread:
            return
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="mailbeacon-reviser", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Revise what is queued, then end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._wake:
            self._pending.close()

    @property
    def idle(self) -> bool:
        with self._wake:
            return not self._pending and not self._busy

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stopping:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = sorted(self._pending.take(self._pending.memory_keys))
                self._busy = True
            for start in range(0, len(batch), _CHUNK):
                self.revise_many(batch[start : start + _CHUNK])
            with self._wake:
                self._busy = False

    def _revise_logged(self, account_id: str, message_id: str) -> int:
        for attempt in (1, 2):  # a deadlock with a concurrent recorder batch is retried once
            try:
                return self.revise_message(account_id, message_id)
            except Exception:
                log.exception("revision of %s/%s failed (attempt %d)", account_id, message_id, attempt)
        self.failures += 1
        return 0

    def revise_message(self, account_id: str, message_id: str) -> int:
        """Revise one message now; returns how many of its events changed."""
        classifier = self.classifier
        if classifier is None:
            raise RuntimeError("no classifier: the server sets Store.reviser.classifier")
        with self._engine.connect() as connection:
            if not _changes(connection, classifier, account_id, message_id):
                self.messages += 1
                return 0
        with self._engine.begin() as connection:
            _lock(connection, account_id, message_id)
            changes = _changes(connection, classifier, account_id, message_id)
            if changes:
                statement = (
                    events.update()
                    .where(events.c.seq == bindparam("b_seq"))
                    .values(
                        classification=bindparam("b_class"),
                        reasons=bindparam("b_reasons"),
                        confidence=bindparam("b_confidence"),
                    )
                )
                connection.execute(statement, changes)
                self._projector.rebuild(connection, account_id, message_id)
        self.messages += 1
        self.changed += len(changes)
        return len(changes)


def _lock(connection: Connection, account_id: str, message_id: str) -> None:
    connection.execute(
        recipients.update()
        .where(recipients.c.account_id == account_id, recipients.c.message_id == message_id)
        .values(status=recipients.c.status)
    )


def _changes(
    connection: Connection, classifier: Classifier, account_id: str, message_id: str
) -> list[dict[str, Any]]:
    times, rows = _read_messages(connection, account_id, [message_id]).get(message_id, ({}, []))
    return _changes_in(classifier, rows, times)


def _read_messages(
    connection: Connection, account_id: str, message_ids: Sequence[str]
) -> dict[str, tuple[dict[str, tuple[float | None, float | None]], list[Any]]]:
    """Each message's recipients' (sent_at, delivered_at) and its stored hits, in seq order."""
    read: dict[str, tuple[dict[str, tuple[float | None, float | None]], list[Any]]] = {}
    times_query = select(
        recipients.c.message_id, recipients.c.recipient, recipients.c.sent_at, recipients.c.delivered_at
    ).where(recipients.c.account_id == account_id, recipients.c.message_id.in_(message_ids))
    for row in connection.execute(times_query):
        read.setdefault(row.message_id, ({}, []))[0][row.recipient] = (row.sent_at, row.delivered_at)
    query = select(events.c.message_id, *(events.c[name] for name in _COLUMNS)).where(
        events.c.account_id == account_id,
        events.c.message_id.in_(message_ids),
        events.c.type.in_(tuple(_KIND_OF)),
    )
    for row in connection.execute(query.order_by(events.c.message_id, events.c.seq)):
        read.setdefault(row.message_id, ({}, []))[1].append(row)
    return read


def _changes_in(classifier: Classifier, rows: Sequence[Any], times: Times) -> list[dict[str, Any]]:
    verdicts = revise_rows(classifier, rows, times)
    return [
        {
            "b_seq": row.seq,
            "b_class": verdict.classification.value,
            "b_reasons": " ".join(verdict.reasons),
            "b_confidence": verdict.confidence,
        }
        for row, verdict in zip(rows, verdicts, strict=True)
        if _differs(row, verdict)
    ]


def revise_rows(classifier: Classifier, rows: Sequence[Any], times: Times) -> list[Verdict]:
    """The revised verdicts of one message's stored hits (``rows`` carry ``_COLUMNS``)."""
    fallback = _earliest(times.values())
    facts = [_facts(row, _own(times.get(row.recipient)) or fallback) for row in rows]
    assessed = [
        classifier.assess(f) if _kept(row) else Assessment(_stored(row), True)
        for row, f in zip(rows, facts, strict=True)
    ]
    return revise(facts, assessed, classifier.config)


def _earliest(times: Iterable[tuple[float | None, float | None]]) -> tuple[float | None, float | None]:
    sent = [s for s, _ in times if s is not None]
    delivered = [d for _, d in times if d is not None]
    return (min(sent) if sent else None, min(delivered) if delivered else None)


def _own(times: tuple[float | None, float | None] | None) -> tuple[float | None, float | None] | None:
    # A link minted without the registered recipient files its hits under another row.
    return times if times is not None and times != (None, None) else None


def _kept(row: Any) -> bool:
    return row.user_agent is not None or row.ip is not None or row.headers is not None


def _stored(row: Any) -> Verdict:
    return Verdict(Classification(row.classification), tuple(row.reasons.split()), row.confidence)


def _facts(row: Any, times: tuple[float | None, float | None]) -> RequestFacts:
    sent, delivered = times
    if delivered is not None and delivered > row.at:
        # A hit before the reported delivery proves the report late (reported without its
        # time, or by a slow provider): timing falls back to the send.
        delivered = None
    return RequestFacts(
        kind=_KIND_OF[row.type],
        method=row.method or "GET",
        at=row.at,
        user_agent=row.user_agent,
        ip=row.ip,
        headers=_json_object(row.headers),
        sent_at=sent,
        delivered_at=delivered,
        link=row.link,
        honeypot=_json_object(row.detail).get("honeypot") is True,
    )


def _json_object(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _differs(row: Any, verdict: Verdict) -> bool:
    return bool(
        row.classification != verdict.classification.value
        or row.reasons != " ".join(verdict.reasons)
        or abs(row.confidence - verdict.confidence) > 1e-9
    )


def stored_messages(engine: Engine, account_id: str | None, message_id: str | None) -> list[Key]:
    """The (account, message) pairs with stored opens or clicks, for ``mailbeacon reclassify``."""
    query = select(events.c.account_id, events.c.message_id).where(events.c.type.in_(tuple(_KIND_OF)))
    if account_id is not None:
        query = query.where(events.c.account_id == account_id)
    if message_id is not None:
        query = query.where(events.c.message_id == message_id)
    with engine.connect() as connection:
        rows = connection.execute(query.distinct().order_by(events.c.account_id, events.c.message_id))
        return [(row.account_id, row.message_id) for row in rows]
