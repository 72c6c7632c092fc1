"""The stream hub on each real database: it reads nothing while no stream is open, and the
first stream to open still starts from the newest event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from mailbeacon.server.stream import StreamFilter, StreamHub
from mailbeacon.store import EventRow, Store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    opened.upgrade()
    opened.start()
    try:
        yield opened
    finally:
        opened.close()


def test_an_idle_hub_reads_nothing_and_the_first_stream_starts_after_the_newest_event(store: Store) -> None:
    account = store.accounts.ensure(f"hub-{uuid.uuid4().hex[:8]}").id
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "mb_events" in statement:  # the hub's reads (the recorder writes on a raw connection)
            statements.append(statement)

    async def run() -> None:
        hub = StreamHub(store.engine, poll=0.01)
        await hub.start()
        event.listen(store.engine, "before_cursor_execute", count)
        try:
            store.recorder.write([EventRow(account, "before", "r", "opened", 1.0)])
            for _ in range(5):
                hub.notify()  # as the recorder does after each commit
                await asyncio.sleep(0.02)
            assert statements == []  # no stream open: no reads, however often it is woken or polls
            await hub.ready()
            subscriber, position = hub.subscribe(StreamFilter(account))
            assert statements  # the first stream brought the position up to date
            store.recorder.write([EventRow(account, "after", "r", "opened", 2.0)])
            hub.notify()
            seq, name, data = await asyncio.wait_for(subscriber.queue.get(), 5)
            assert seq > position
            assert '"after"' in data  # the event before the stream opened is not sent again
            assert name == "message.opened"
            hub.unsubscribe(subscriber)
        finally:
            event.remove(store.engine, "before_cursor_execute", count)
            await hub.stop()

    asyncio.run(run())
