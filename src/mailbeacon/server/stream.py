"""``GET /api/v1/stream``: the caller's events as Server-Sent Events, as they are recorded.

Each event is sent as ``id: <seq>`` / ``event: message.opened`` / ``data:
<the webhook body>``. ``seq`` is the events table's order of record, so a
client that reconnects with ``Last-Event-ID`` (browsers do this by
themselves) gets everything after it, replayed from the store, then the
live tail, without gaps or duplicates:

1. the stream subscribes to the hub *first* and notes the hub's position P;
2. it replays from the store the events in (Last-Event-ID, P];
3. then it sends what the hub queued, all of which is after P.

The hub (one per process) is woken by the recorder after each commit, reads
the new rows once for all streams, and fans them out in memory; it also
polls every 50 ms for events other processes wrote (the ingester, other nodes).
While no stream is open it reads nothing: the first stream to open brings P up
to date itself (``StreamHub.ready``). Polling ``max(seq)`` 20 times a second
for nobody cost the HTTP process ~3 % of its CPU under load (py-spy), on a
thread that takes the GIL from the request loop. Comment lines keep idle
proxies from closing the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, select

from mailbeacon._aio import wait_event
from mailbeacon.store.schema import events, message_tags, messages
from mailbeacon.webhooks.policy import event_body

__all__ = ["StreamFilter", "StreamHub", "sse_events"]

log = logging.getLogger("mailbeacon.stream")
_PAGE = 1000
_QUEUE = 10_000  # a client this far behind is cut off; it resumes from Last-Event-ID


@dataclass(frozen=True, slots=True)
class StreamFilter:
    account: str
    message: str | None = None
    campaign: str | None = None
    tag: str | None = None
    types: frozenset[str] = frozenset()

    def wants(self, event: dict[str, Any], campaign: str | None, tags: frozenset[str]) -> bool:
        return (
            event["account_id"] == self.account
            and (self.message is None or event["message_id"] == self.message)
            and (self.campaign is None or campaign == self.campaign)
            and (self.tag is None or self.tag in tags)
            and (not self.types or event["type"] in self.types)
        )


Item = tuple[int, str, str]  # seq, event name, data


class _Subscriber:
    def __init__(self, where: StreamFilter) -> None:
        self.where = where
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(_QUEUE)


def _query(engine: Engine, after: int, through: int | None, account: str | None) -> list[Any]:
    query = (
        select(events, messages.c.campaign)
        .select_from(
            events.outerjoin(
                messages,
                and_(messages.c.account_id == events.c.account_id, messages.c.id == events.c.message_id),
            )
        )
        .where(events.c.seq > after)
        .order_by(events.c.seq)
        .limit(_PAGE)
    )
    if through is not None:
        query = query.where(events.c.seq <= through)
    if account is not None:
        query = query.where(events.c.account_id == account)
    with engine.connect() as connection:
        rows: list[dict[str, Any]] = [dict(found._mapping) for found in connection.execute(query)]
        keys = {(r["account_id"], r["message_id"]) for r in rows}
        tags: dict[tuple[str, str], set[str]] = {}
        if keys:
            found = connection.execute(
                select(message_tags).where(message_tags.c.message_id.in_({m for _, m in keys}))
            )
            for tag in found:
                tags.setdefault((tag.account_id, tag.message_id), set()).add(tag.tag)
    for row in rows:
        row["tags"] = frozenset(tags.get((row["account_id"], row["message_id"]), ()))
    return rows


def _item(row: dict[str, Any]) -> Item:
    return row["seq"], "message." + row["type"], event_body(row, row["campaign"])


def _max_seq(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.coalesce(func.max(events.c.seq), 0))).scalar_one())


class StreamHub:
    """One reader of new events per process, fanning out to every open stream."""

    def __init__(self, engine: Engine, poll: float = 0.05) -> None:
        self._engine = engine
        self._poll = poll
        self._subscribers: set[_Subscriber] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.position = 0
        self.closed = False

    @property
    def streams(self) -> int:
        return len(self._subscribers)

    def notify(self, _rows: Any = None) -> None:
        """Recorder listener: new events were committed."""
        self._wake.set()

    async def start(self) -> None:
        self.position = await asyncio.to_thread(_max_seq, self._engine)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        """End every open stream now and refuse new ones (the server is shutting down).

        Safe to call more than once and from a signal handler's callback: the HTTP
        server waits for open responses before it shuts the application down, so
        endless streams must end first. Clients reconnect with Last-Event-ID.
        """
        self.closed = True
        for subscriber in list(self._subscribers):
            self._end(subscriber)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.close()

    async def ready(self) -> None:
        """Bring ``position`` up to date before a stream subscribes, when no open stream has
        kept it so (``_step`` reads nothing while none is open)."""
        if not self._subscribers:
            self.position = max(self.position, await asyncio.to_thread(_max_seq, self._engine))

    def subscribe(self, where: StreamFilter) -> tuple[_Subscriber, int]:
        """Subscribe (after ``await ready()``); returns the subscriber and the position P."""
        subscriber = _Subscriber(where)
        if self.closed:
            subscriber.queue.put_nowait(None)
        else:
            self._subscribers.add(subscriber)
        return subscriber, self.position

    def _end(self, subscriber: _Subscriber) -> None:
        """Close one stream: drop what it has not sent yet (it resumes from its last id)."""
        self.unsubscribe(subscriber)
        subscriber.queue._queue.clear()  # type: ignore[attr-defined]
        subscriber.queue.put_nowait(None)

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def _run(self) -> None:
        while True:
            await wait_event(self._wake, self._poll)
            self._wake.clear()
            try:
                await self._step()
            except Exception:
                log.exception("stream hub could not read new events; retrying")
                await asyncio.sleep(self._poll)

    async def _step(self) -> None:
        while True:
            if not self._subscribers:
                return  # nobody to send to; ``ready`` catches the position up for the next stream
            rows = await asyncio.to_thread(_query, self._engine, self.position, None, None)
            for row in rows:
                item = _item(row)
                for subscriber in list(self._subscribers):
                    if subscriber.where.wants(row, row["campaign"], row["tags"]):
                        self._offer(subscriber, item)
                self.position = row["seq"]
            if len(rows) < _PAGE:
                return

    def _offer(self, subscriber: _Subscriber, item: Item) -> None:
        try:
            subscriber.queue.put_nowait(item)
        except asyncio.QueueFull:  # too slow: close it; the client resumes from its last id
            self._end(subscriber)


def _frame(item: Item) -> bytes:
    seq, name, data = item
    return f"id: {seq}\nevent: {name}\ndata: {data}\n\n".encode()


async def sse_events(
    hub: StreamHub, engine: Engine, where: StreamFilter, last_id: int | None, heartbeat: float
) -> AsyncIterator[bytes]:
    await hub.ready()
    subscriber, position = hub.subscribe(where)
    try:
        yield f"retry: 2000\n: stream open at {position}\n\n".encode()
        sent = position
        if last_id is not None and last_id < position:
            sent = last_id
            while sent < position:
                rows = await asyncio.to_thread(_query, engine, sent, position, where.account)
                for row in rows:
                    if where.wants(row, row["campaign"], row["tags"]):
                        yield _frame(_item(row))
                    sent = row["seq"]
                if len(rows) < _PAGE:
                    break
            sent = position
        while True:
            try:
                async with asyncio.timeout(heartbeat):  # not wait_for: see mailbeacon._aio
                    item = await subscriber.queue.get()
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if item is None:
                return
            if item[0] > sent:
                sent = item[0]
                yield _frame(item)
    finally:
        hub.unsubscribe(subscriber)
