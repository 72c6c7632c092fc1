"""Stopping the delivery worker and the stream hub ends them, even when a wake-up races the stop.

On Python 3.11 ``asyncio.wait_for`` swallows a cancellation that arrives while the
awaited thing has just finished (CPython gh-86296): a commit's wake-up in the same loop
turn as ``stop()`` left the task looping forever, and ``mailbeacon serve`` hung on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop

from mailbeacon.server.stream import StreamHub
from mailbeacon.store import Store
from mailbeacon.webhooks.worker import DeliveryWorker

TURNS = range(8)  # loop turns between the wake-up and the stop: one of them hits the race
Runner = Callable[[Coroutine[Any, Any, bool]], bool]
LOOPS = [pytest.param(asyncio.run, id="asyncio"), pytest.param(uvloop.run, id="uvloop")]  # serve uses uvloop


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'mailbeacon.db'}")
    opened.upgrade()
    opened.start()
    yield opened
    opened.close()


async def _woken_then_stopped(
    wake: Callable[[], None], stop: Callable[[], Awaitable[None]], turns: int
) -> bool:
    await asyncio.sleep(0.05)  # idle, waiting for a wake-up
    wake()  # what a commit does
    for _ in range(turns):
        await asyncio.sleep(0)
    # Timed, not only bounded: the worker's stop() suppresses CancelledError, so a timeout's
    # cancellation of a hung stop() ends it silently (the second cancel reaches the task).
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            await stop()
    return time.monotonic() - started < 2


@pytest.mark.parametrize("run", LOOPS)
@pytest.mark.parametrize("turns", TURNS)
def test_the_delivery_worker_stops_when_woken_just_before(store: Store, turns: int, run: Runner) -> None:
    async def main() -> bool:
        worker = DeliveryWorker(store, poll=30, busy_poll=30, db_on_loop=True)
        worker.start()
        return await _woken_then_stopped(worker.wake, worker.stop, turns)

    assert run(main())


@pytest.mark.parametrize("run", LOOPS)
@pytest.mark.parametrize("turns", TURNS)
def test_the_stream_hub_stops_when_notified_just_before(store: Store, turns: int, run: Runner) -> None:
    async def main() -> bool:
        hub = StreamHub(store.engine, poll=30)
        await hub.start()
        return await _woken_then_stopped(hub.notify, hub.stop, turns)

    assert run(main())
