"""The stream hub on each real database: it reads nothing while no stream is open, the
first stream to open still starts from the newest event, and two writers committing out
of ``seq`` order cannot make it step past an event."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from typing import Any

from sqlalchemy import event

from mailbeacon.server.stream import StreamFilter, StreamHub
from mailbeacon.store import EventRow, Store


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


def test_a_stream_misses_no_event_when_two_writers_commit_out_of_seq_order(database_url: str) -> None:
    """The ingester and an API process write events at the same time. On PostgreSQL each row's
    ``seq`` is handed out at insert, so without the recorder's ordering lock the second writer
    could commit first: the hub would read its event, move past the first writer's lower
    ``seq`` and never send that event once it commits."""
    first, second = Store(database_url), Store(database_url)  # two processes' connections
    for store in (first, second):
        store.upgrade()
        store.start()
    account = first.accounts.ensure(f"order-{uuid.uuid4().hex[:8]}").id
    inserted, release = threading.Event(), threading.Event()

    def hold_open(_cursor: Any) -> None:  # runs in the first writer's transaction, after its insert
        inserted.set()
        assert release.wait(10)

    async def run() -> list[Any]:
        hub = StreamHub(first.engine, poll=0.01)
        await hub.start()
        await hub.ready()
        subscriber, _ = hub.subscribe(StreamFilter(account))
        try:
            slow = asyncio.create_task(
                asyncio.to_thread(
                    first.recorder.write, [EventRow(account, "slow", "r", "opened", 1.0)], hold_open
                )
            )
            assert await asyncio.to_thread(inserted.wait, 10)
            fast = asyncio.create_task(
                asyncio.to_thread(second.recorder.write, [EventRow(account, "fast", "r", "opened", 2.0)])
            )
            await asyncio.sleep(0.3)  # the hub polls many times while the first writer is open
            release.set()
            assert await slow
            assert await fast
            got: list[Any] = []
            with contextlib.suppress(TimeoutError):
                while len(got) < 2:
                    got.append(await asyncio.wait_for(subscriber.queue.get(), 3))
            return got
        finally:
            release.set()
            hub.unsubscribe(subscriber)
            await hub.stop()

    try:
        got = asyncio.run(run())
    finally:
        first.close()
        second.close()
    # Both sent, the first writer's (the lower seq) first.
    assert [("slow" if '"slow"' in data else "fast") for _seq, _name, data in got] == ["slow", "fast"]
    assert [seq for seq, _name, _data in got] == sorted(seq for seq, _name, _data in got)
