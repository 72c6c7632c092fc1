"""Group commit on the event loop: what the recorder and the hit log share.

``submit(item)`` queues an item and returns a future. The first item of a
batch schedules one flush with ``call_soon``, so every request that reached
the loop in the same turn joins that batch; the flush hands the whole batch
(in slices of at most ``max_batch``) to ``write`` and resolves each item's
future with what ``write`` returned. When idle a lone item is written at
once: there is no timer to wait for.

A caller may pass its own ``waiter`` instead of taking a future: anything with
a future's ``done()`` and ``set_result(ok)``. The flush calls its
``set_result`` directly, in the same callback as the write, where a future
would schedule each of its done-callbacks for a later turn of the loop. The
HTTP protocol's tracking fast path (``server.fastpath``) is such a waiter: it
writes its response right there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar, overload

__all__ = ["GroupCommit", "W", "Waiter"]

log = logging.getLogger("mailbeacon.group")

T = TypeVar("T")


class Waiter(Protocol):
    """What a flush resolves: an ``asyncio.Future[bool]``, or a caller's object of the same shape."""

    def done(self) -> bool: ...

    def set_result(self, result: bool, /) -> None: ...


W = TypeVar("W", bound=Waiter)


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], bool], *, max_batch: int | None = None) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, Waiter]] = []
        self._scheduled = False
        self.closed = True  # the owner opens it once it can write; while closed, submit answers False

    @property
    def queued(self) -> int:
        return len(self._pending)

    @overload
    def submit(self, item: T) -> asyncio.Future[bool]: ...

    @overload
    def submit(self, item: T, waiter: W) -> W: ...

    def submit(self, item: T, waiter: Waiter | None = None) -> Waiter:
        """Queue ``item``; ``waiter`` (by default a new future) gets True once it is written, False
        if the write failed or the group is closed (then at once, before ``submit`` returns)."""
        # The loop is looked up only when needed: get_running_loop() costs a getpid(2) system
        # call on every call (CPython checks for a fork), ~7 % of a hit's time in py-spy.
        if waiter is None:
            waiter = asyncio.get_running_loop().create_future()
        if self.closed:
            waiter.set_result(False)
            return waiter
        self._pending.append((item, waiter))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        return waiter

    def flush(self) -> None:
        """Write everything queued (runs on the loop; also called on shutdown, and early by an
        owner that would rather not wait for the end of the loop's turn)."""
        batch, self._pending = self._pending, []
        if not batch:
            return  # flushed early: the scheduled call finds nothing, and stays scheduled-free
        self._scheduled = False
        size = self._max_batch or len(batch)
        for start in range(0, len(batch), size):
            part = batch[start : start + size]
            ok = self._write([item for item, _ in part])
            for _, waiter in part:
                if waiter.done():
                    continue
                try:
                    waiter.set_result(ok)
                except Exception:  # one caller's bug must not leave the rest of the group waiting
                    log.exception("a group commit waiter failed")
