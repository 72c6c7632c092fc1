"""Messages, their recipients and events, as one account sees them.

Every query takes the account id and filters on it: another account's
message is indistinguishable from a message that does not exist.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, exists, or_, select
from sqlalchemy.exc import IntegrityError

from mailbeacon.core.status import RecipientState, Status, summarize
from mailbeacon.store.engine import is_sqlite
from mailbeacon.store.projection import state_from_row
from mailbeacon.store.recorder import EVENT_ORDER_LOCK
from mailbeacon.store.schema import events, links, message_tags, messages, recipients

__all__ = [
    "DuplicateMessage",
    "EventView",
    "MessageFilter",
    "MessageRecord",
    "MessageStore",
    "MessageView",
    "decode_cursor",
]


class DuplicateMessage(Exception):
    """A message with that id exists already in this account."""


class BadCursor(ValueError):
    """A pagination cursor this server did not issue."""


@dataclass(frozen=True, slots=True)
class MessageRecord:
    account_id: str
    id: str
    channel: str = "email"
    subject: str | None = None
    campaign: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    registered: bool = True


@dataclass(frozen=True, slots=True)
class EventView:
    seq: int
    type: str
    at: float
    recipient: str
    link: int | None
    url: str | None
    classification: str
    reasons: tuple[str, ...]
    confidence: float
    event_id: str | None
    detail: dict[str, Any] | None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class MessageView:
    message: MessageRecord
    recipients: dict[str, RecipientState]
    links: dict[int, str]
    events: list[EventView]

    @property
    def status(self) -> Status:
        return summarize(self.recipients.values())


@dataclass(frozen=True, slots=True)
class MessageFilter:
    status: Status | None = None
    campaign: str | None = None
    tag: str | None = None
    recipient: str | None = None
    created_after: float | None = None
    created_before: float | None = None


def encode_cursor(created_at: float, message_id: str) -> str:
    raw = json.dumps([created_at, message_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created_at, message_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(message_id, str) or not isinstance(created_at, int | float):
            raise TypeError
    except (ValueError, TypeError):
        raise BadCursor("cursor is not one this server issued; pass next_cursor as returned") from None
    return float(created_at), message_id


def _event_view(row: Any) -> EventView:
    return EventView(
        seq=row.seq,
        type=row.type,
        at=row.at,
        recipient=row.recipient,
        link=row.link,
        url=row.url,
        classification=row.classification,
        reasons=tuple(row.reasons.split()),
        confidence=row.confidence,
        event_id=row.event_id,
        detail=json.loads(row.detail) if row.detail else None,
        ip=row.ip,
        user_agent=row.user_agent,
    )


def _record(row: Any, tags: Sequence[str]) -> MessageRecord:
    return MessageRecord(
        account_id=row.account_id,
        id=row.id,
        channel=row.channel,
        subject=row.subject,
        campaign=row.campaign,
        tags=tuple(tags),
        metadata=row.metadata or {},
        created_at=row.created_at,
        registered=row.registered,
    )


class MessageStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.outbox: Any = None  # store.webhooks.OutboxWriter, set by Store

    def register(
        self, record: MessageRecord, to: Sequence[str], link_urls: Sequence[tuple[int, str]]
    ) -> None:
        """Store a message with its recipients (``sent``), links and ``sent`` events in one transaction."""
        now = record.created_at or time.time()
        with self._engine.begin() as connection:
            if not is_sqlite(self._engine):
                # Before any write: the ingester takes it before its row locks, so must this.
                connection.exec_driver_sql(EVENT_ORDER_LOCK)
            try:
                connection.execute(
                    messages.insert().values(
                        account_id=record.account_id,
                        id=record.id,
                        channel=record.channel,
                        subject=record.subject,
                        campaign=record.campaign,
                        metadata=record.metadata,
                        created_at=now,
                        registered=True,
                    )
                )
            except IntegrityError:
                raise DuplicateMessage(record.id) from None
            key = {"account_id": record.account_id, "message_id": record.id}
            if record.tags:
                connection.execute(message_tags.insert(), [{**key, "tag": tag} for tag in record.tags])
            if link_urls:
                connection.execute(links.insert(), [{**key, "idx": i, "url": url} for i, url in link_urls])
            connection.execute(
                recipients.insert(),
                [
                    {**key, "recipient": r, "status": Status.SENT.value, "status_rank": 0, "sent_at": now}
                    for r in to
                ],
            )
            cursor = connection.connection.cursor() if self.outbox is not None else None
            noted = self.outbox.before(cursor, [record]) if self.outbox is not None else None
            connection.execute(
                events.insert(),
                [
                    {**key, "recipient": r, "type": "sent", "at": now, "classification": "unknown"}
                    | {"reasons": "", "confidence": 0.0}
                    for r in to
                ],
            )
            if noted is not None:
                self.outbox.after(cursor, noted)  # the "sent" events' webhooks, in their transaction

    def get(self, account_id: str, message_id: str) -> MessageView | None:
        where = and_(messages.c.account_id == account_id, messages.c.id == message_id)
        with self._engine.connect() as connection:
            row = connection.execute(select(messages).where(where)).first()
            if row is None:
                return None
            key = (account_id, message_id)
            tags = self._tags(connection, [key]).get(key, [])
            states = self._states(connection, [key]).get(key, {})
            link_rows = connection.execute(
                select(links.c.idx, links.c.url).where(
                    links.c.account_id == account_id, links.c.message_id == message_id
                )
            )
            event_rows = connection.execute(
                select(events)
                .where(events.c.account_id == account_id, events.c.message_id == message_id)
                .order_by(events.c.at, events.c.seq)
            )
            return MessageView(
                _record(row, tags),
                states,
                {r.idx: r.url for r in link_rows},
                [_event_view(e) for e in event_rows],
            )

    def exists(self, account_id: str, message_id: str) -> bool:
        with self._engine.connect() as connection:
            query = select(messages.c.id).where(
                messages.c.account_id == account_id, messages.c.id == message_id
            )
            return connection.execute(query).first() is not None

    def find_event(self, account_id: str, message_id: str, event_id: str) -> EventView | None:
        query = select(events).where(
            events.c.account_id == account_id,
            events.c.message_id == message_id,
            events.c.event_id == event_id,
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return _event_view(row) if row else None

    def page(
        self, account_id: str, where: MessageFilter, *, limit: int, cursor: str | None = None
    ) -> tuple[list[MessageView], str | None]:
        """One page, newest first, and the cursor of the next page (None on the last)."""
        query = select(messages).where(messages.c.account_id == account_id)
        query = query.where(*self._conditions(account_id, where))
        if cursor is not None:
            created_at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(
                    messages.c.created_at < created_at,
                    and_(messages.c.created_at == created_at, messages.c.id < last_id),
                )
            )
        query = query.order_by(messages.c.created_at.desc(), messages.c.id.desc()).limit(limit + 1)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
            page = rows[:limit]
            keys = [(account_id, row.id) for row in page]
            tags = self._tags(connection, keys)
            states = self._states(connection, keys)
        views = [
            MessageView(
                _record(row, tags.get((account_id, row.id), [])), states.get((account_id, row.id), {}), {}, []
            )
            for row in page
        ]
        more = len(rows) > limit
        return views, encode_cursor(page[-1].created_at, page[-1].id) if more and page else None

    def _conditions(self, account_id: str, where: MessageFilter) -> list[Any]:
        conditions: list[Any] = []
        same_message = and_(recipients.c.account_id == account_id, recipients.c.message_id == messages.c.id)
        if where.status is not None:
            conditions.append(exists().where(same_message, recipients.c.status == where.status.value))
        if where.recipient is not None:
            conditions.append(exists().where(same_message, recipients.c.recipient == where.recipient))
        if where.tag is not None:
            conditions.append(
                exists().where(
                    message_tags.c.account_id == account_id,
                    message_tags.c.message_id == messages.c.id,
                    message_tags.c.tag == where.tag,
                )
            )
        if where.campaign is not None:
            conditions.append(messages.c.campaign == where.campaign)
        if where.created_after is not None:
            conditions.append(messages.c.created_at >= where.created_after)
        if where.created_before is not None:
            conditions.append(messages.c.created_at < where.created_before)
        return conditions

    def _tags(self, connection: Any, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        found: dict[tuple[str, str], list[str]] = {}
        if not keys:
            return found
        query = select(message_tags).where(
            message_tags.c.account_id == keys[0][0], message_tags.c.message_id.in_([m for _, m in keys])
        )
        for row in connection.execute(query.order_by(message_tags.c.tag)):
            found.setdefault((row.account_id, row.message_id), []).append(row.tag)
        return found

    def _states(
        self, connection: Any, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, RecipientState]]:
        found: dict[tuple[str, str], dict[str, RecipientState]] = {}
        if not keys:
            return found
        query = select(recipients).where(
            recipients.c.account_id == keys[0][0], recipients.c.message_id.in_([m for _, m in keys])
        )
        for row in connection.execute(query.order_by(recipients.c.recipient)):
            found.setdefault((row.account_id, row.message_id), {})[row.recipient] = state_from_row(row)
        return found
