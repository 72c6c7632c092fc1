"""Waiting with a timeout, in a way that never swallows a cancellation.

Not ``asyncio.wait_for``: on Python 3.11 it returns the awaited result instead of
raising ``CancelledError`` when the cancellation arrives in the same loop turn as
the result (CPython gh-86296, fixed in 3.12). A commit's wake-up in the same turn
as ``stop()`` then left the delivery worker or the stream hub looping forever, and
``mailbeacon serve`` hung on SIGTERM. ``asyncio.timeout`` counts cancellations, so
a stop always ends the task.
"""

from __future__ import annotations

import asyncio

__all__ = ["wait_event"]


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True if it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
