"""Group commit (store.group): futures and caller-supplied waiters, one write per turn of the loop."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from mailbeacon.store.group import GroupCommit


class Waiter:
    """A caller's waiter, as the HTTP fast path's cycle is: it records what it was told, and when."""

    def __init__(self, log: list[str], name: str, *, fail: bool = False) -> None:
        self.log = log
        self.name = name
        self.fail = fail
        self.result: bool | None = None

    def done(self) -> bool:
        return self.result is not None

    def set_result(self, ok: bool, /) -> None:
        self.result = ok
        self.log.append(f"{self.name}:{ok}")
        if self.fail:
            raise RuntimeError("a waiter's bug")


def on_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body on a fresh event loop (the suite's tests are plain functions)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def _group(log: list[str], ok: bool = True) -> GroupCommit[str]:
    def write(items: list[str]) -> bool:
        log.append("write:" + ",".join(items))
        return ok

    group: GroupCommit[str] = GroupCommit(write)
    group.closed = False
    return group


@on_loop
async def test_requests_of_one_turn_share_one_write_and_waiters_hear_inside_it() -> None:
    log: list[str] = []
    group = _group(log)
    future = group.submit("a")
    first, second = Waiter(log, "w1"), Waiter(log, "w2")
    assert group.submit("b", first) is first
    group.submit("c", second)
    assert log == []
    assert group.queued == 3
    await asyncio.sleep(0)
    # One write; the waiters were told in the flush itself, right after it, in order.
    assert log == ["write:a,b,c", "w1:True", "w2:True"]
    assert future.done()
    assert future.result() is True
    assert group.queued == 0


@on_loop
async def test_a_failed_write_tells_every_waiter_false() -> None:
    log: list[str] = []
    group = _group(log, ok=False)
    future = group.submit("a")
    waiter = group.submit("b", Waiter(log, "w"))
    await asyncio.sleep(0)
    assert future.result() is False
    assert waiter.result is False


@on_loop
async def test_a_waiter_that_raises_does_not_leave_the_rest_waiting(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    group = _group(log)
    broken = group.submit("a", Waiter(log, "broken", fail=True))
    after = group.submit("b", Waiter(log, "after"))
    future = group.submit("c")
    await asyncio.sleep(0)
    assert broken.result is True
    assert after.result is True
    assert future.result() is True
    assert "a group commit waiter failed" in caplog.text


@on_loop
async def test_a_closed_group_answers_false_at_once_and_writes_nothing() -> None:
    log: list[str] = []
    group = _group(log)
    group.closed = True
    waiter = group.submit("a", Waiter(log, "w"))
    assert waiter.result is False  # before submit returned
    future = group.submit("b")
    assert future.done()
    assert future.result() is False
    await asyncio.sleep(0)
    assert log == ["w:False"]


@on_loop
async def test_an_early_flush_leaves_nothing_for_the_scheduled_one_and_later_items_still_go() -> None:
    log: list[str] = []
    group = _group(log)
    group.submit("a", Waiter(log, "w1"))
    group.flush()  # an owner flushing before the turn ends (as on shutdown)
    assert log == ["write:a", "w1:True"]
    late = group.submit("b", Waiter(log, "w2"))
    await asyncio.sleep(0)  # the first scheduled flush finds "b" and writes it
    await asyncio.sleep(0)  # the second finds nothing: no empty write
    assert late.result is True
    assert log == ["write:a", "w1:True", "write:b", "w2:True"]


@on_loop
async def test_a_cancelled_future_is_skipped() -> None:
    log: list[str] = []
    group = _group(log)
    cancelled = group.submit("a")
    cancelled.cancel()
    kept = group.submit("b")
    await asyncio.sleep(0)
    assert log == ["write:a,b"]  # the hit is written all the same; nobody is told twice
    assert kept.result() is True
