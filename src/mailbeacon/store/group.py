"""Group commit on the event loop: what the recorder and the hit log share.

``submit(item)`` queues an item and returns a future. The first item of a
batch schedules one flush with ``call_soon``, so every request that reached
the loop in the same turn joins that batch; the flush hands the whole batch
(in slices of at most ``max_batch``) to ``write`` and resolves each item's
future with what ``write`` returned. When idle a lone item is written at
once: there is no timer to wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], bool], *, max_batch: int | None = None) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[bool]]] = []
        self._scheduled = False
        self.closed = True  # the owner opens it once it can write; while closed, submit answers False

    @property
    def queued(self) -> int:
        return len(self._pending)

    def submit(self, item: T) -> asyncio.Future[bool]:
        """Queue ``item``; the future becomes True once written, False if the write failed or closed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if self.closed:
            future.set_result(False)
            return future
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        """Write everything queued (runs on the loop; also called on shutdown)."""
        self._scheduled = False
        batch, self._pending = self._pending, []
        size = self._max_batch or len(batch) or 1
        for start in range(0, len(batch), size):
            part = batch[start : start + size]
            ok = self._write([item for item, _ in part])
            for _, future in part:
                if not future.done():
                    future.set_result(ok)
