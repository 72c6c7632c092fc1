"""The ``recipients`` projection: each recipient's status, kept current from the events.

``core.status`` holds the rules. For each batch the recorder commits, the
batch's events are folded per recipient (``fold``) into a partial state, and
that state is merged into the stored one by an upsert whose SQL is
``core.status.merge`` written column by column: times take the earlier
value, the status the higher ``rank``. Because fold and merge are order-
independent and idempotent, a late, repeated or out-of-order event changes
nothing it should not. It runs in the same transaction as the events insert,
so the projection never lags behind what was committed.

Messages first seen through an offline-minted link get a row here too
(``registered = false``), so they list and count like the others.

The statements bypass SQLAlchemy's compiler (see ``recorder``), which would
cost more per row than the database does. On SQLite they go through the
driver's ``executemany``. On PostgreSQL each is one statement for the whole
batch, over columns sent as binary arrays (``unnest``): psycopg's pipelined
``executemany`` spent ~30 µs of Python a row and the server ~15 more parsing and
executing a statement per row (``benchmarks/ingest.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from typing import Any, Final

from sqlalchemy import Connection, select

from mailbeacon.core.events import Classification, EventType
from mailbeacon.core.status import EventFacts, RecipientState, Status, event_state, merge, rank
from mailbeacon.store.recorder import EventRow
from mailbeacon.store.schema import events, recipients

__all__ = ["Projector", "recipient_rows", "state_from_row"]

_TIMES = tuple(field.name for field in fields(RecipientState) if field.name != "status")
_COLUMNS = ("account_id", "message_id", "recipient", "status", "status_rank", *_TIMES)

Key = tuple[str, str, str]


def state_from_row(row: Any) -> RecipientState:
    return RecipientState(Status(row.status), **{name: getattr(row, name) for name in _TIMES})


def _earlier(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"LEAST(excluded.{column}, mb_recipients.{column})"  # LEAST skips NULLs
    # SQLite's two-argument min() is NULL if either is: fall back to whichever is set.
    return (
        f"coalesce(min(excluded.{column}, mb_recipients.{column}), excluded.{column}, mb_recipients.{column})"
    )


def _upsert_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    greatest = "GREATEST" if dialect == "postgresql" else "max"
    updates = [
        "status = CASE WHEN excluded.status_rank > mb_recipients.status_rank "
        "THEN excluded.status ELSE mb_recipients.status END",
        f"status_rank = {greatest}(excluded.status_rank, mb_recipients.status_rank)",
        *(f"{name} = {_earlier(dialect, name)}" for name in _TIMES),
    ]
    return (
        f"INSERT INTO mb_recipients ({', '.join(_COLUMNS)}) VALUES ({', '.join([mark] * len(_COLUMNS))}) "  # noqa: S608
        f"ON CONFLICT (account_id, message_id, recipient) DO UPDATE SET {', '.join(updates)}"
    )


def _messages_sql(dialect: str) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return (
        "INSERT INTO mb_messages (account_id, id, channel, created_at, registered) "  # noqa: S608
        f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) ON CONFLICT DO NOTHING"
    )


# PostgreSQL: the same two statements, each over a whole batch. ``%b`` sends the arrays in
# binary: psycopg's text form quotes every element with a regex (a third of the ingester's time).
_ARRAY_TYPES: Final = ("text", "text", "text", "text", "int4", *(["float8"] * len(_TIMES)))


def _upsert_arrays_sql() -> str:
    row = _upsert_sql("postgresql")
    head, _, rest = row.partition(" VALUES ")
    _, _, conflict = rest.partition(") ON CONFLICT ")
    columns = ", ".join(f"%b::{kind}[]" for kind in _ARRAY_TYPES)
    return f"{head} SELECT * FROM unnest({columns}) ON CONFLICT {conflict}"  # noqa: S608


_MESSAGES_ARRAYS_SQL: Final = (
    "INSERT INTO mb_messages (account_id, id, channel, created_at, registered) "
    "SELECT a, m, 'email', t, false FROM unnest(%b::text[], %b::text[], %b::float8[]) AS u(a, m, t) "
    "ON CONFLICT DO NOTHING"
)


def _facts(row: EventRow) -> EventFacts:
    return EventFacts(EventType(row.type), row.at, Classification(row.classification))


def fold_batch(rows: Iterable[EventRow]) -> dict[Key, RecipientState]:
    """Each recipient's partial state from this batch alone."""
    states: dict[Key, RecipientState] = {}
    for row in rows:
        key = (row.account_id, row.message_id, row.recipient)
        state = event_state(_facts(row))
        earlier = states.get(key)
        states[key] = state if earlier is None else merge(earlier, state)
    return states


def recipient_rows(rows: Sequence[EventRow]) -> dict[Key, tuple[Any, ...]]:
    """The upsert row of each recipient in ``rows``: what ``fold_batch`` gives, as columns.

    Most recipients appear once in a batch (a burst of hits on distinct messages): their
    row comes from a table of each (type, classification)'s effect, without building an
    ``EventFacts`` and a ``RecipientState`` per event (~3 µs of the ingester's ~15 a row).
    Recipients that appear more than once are folded as before.
    """
    first: dict[Key, EventRow] = {}
    repeated: set[Key] = set()
    for row in rows:
        key = (row.account_id, row.message_id, row.recipient)
        if key in first:
            repeated.add(key)
        else:
            first[key] = row
    out: dict[Key, tuple[Any, ...]] = {}
    for key, row in first.items():
        if key in repeated:
            continue
        effect = _ROW_EFFECTS.get((row.type, row.classification))
        if effect is None:  # not a known pair: let fold_batch raise its precise error
            repeated.add(key)
            continue
        status, status_rank, sets = effect
        at = row.at
        out[key] = (*key, status, status_rank, *[at if set_ else None for set_ in sets])
    if repeated:
        states = fold_batch(
            row for row in rows if (row.account_id, row.message_id, row.recipient) in repeated
        )
        for key, state in states.items():
            times = (getattr(state, name) for name in _TIMES)
            out[key] = (*key, state.status.value, rank(state.status), *times)
    return out


def _row_effect(kind: EventType, verdict: Classification) -> tuple[str, int, tuple[bool, ...]]:
    state = event_state(EventFacts(kind, 1.0, verdict))
    return state.status.value, rank(state.status), tuple(getattr(state, name) is not None for name in _TIMES)


# What one event of each (type, classification) does to its recipient's row, from core.status.
_ROW_EFFECTS: Final = {
    (kind.value, verdict.value): _row_effect(kind, verdict)
    for kind in EventType
    for verdict in Classification
}


class Projector:
    """Merges committed event batches into ``mb_recipients``."""

    def __init__(self, dialect: str) -> None:
        self._arrays = dialect == "postgresql"
        self._upsert = _upsert_arrays_sql() if self._arrays else _upsert_sql(dialect)
        self._messages = _MESSAGES_ARRAYS_SQL if self._arrays else _messages_sql(dialect)

    def __call__(self, cursor: Any, rows: Sequence[EventRow]) -> None:
        """Run inside the recorder's transaction, on its DBAPI cursor."""
        if not rows:
            return
        first_seen: dict[tuple[str, str], float] = {}
        for row in rows:
            key = (row.account_id, row.message_id)
            if row.at < first_seen.get(key, float("inf")):
                first_seen[key] = row.at
        upserts = recipient_rows(rows)
        if not self._arrays:
            cursor.executemany(
                self._messages, [(a, m, "email", at, False) for (a, m), at in first_seen.items()]
            )
            cursor.executemany(self._upsert, list(upserts.values()))
            return
        # In key order, so two writers (the ingester, an API worker) lock shared rows in the
        # same order and cannot deadlock. Each key appears once: an upsert may not touch a row twice.
        messages = sorted(first_seen)
        cursor.execute(
            self._messages,
            ([a for a, _ in messages], [m for _, m in messages], [first_seen[key] for key in messages]),
        )
        cursor.execute(
            self._upsert,
            [list(column) for column in zip(*(upserts[key] for key in sorted(upserts)), strict=True)],
        )

    def rebuild(self, connection: Connection, account_id: str, message_id: str) -> None:
        """Recompute one message's recipients from all its events (after a reclassification)."""
        query = select(*(events.c[name] for name in EventRow._fields)).where(
            events.c.account_id == account_id, events.c.message_id == message_id
        )
        states = fold_batch(EventRow(*row) for row in connection.execute(query))
        for (account, message, recipient), state in states.items():
            connection.execute(
                recipients.update()
                .where(
                    recipients.c.account_id == account,
                    recipients.c.message_id == message,
                    recipients.c.recipient == recipient,
                )
                .values(
                    status=state.status.value,
                    status_rank=rank(state.status),
                    **{n: getattr(state, n) for n in _TIMES},
                )
            )
