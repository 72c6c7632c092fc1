"""The worker's side of the hit log: append hits, and let API reads see them.

Tracking endpoints append hits to this worker's ``HitLog``; the ingester
moves them into the database. Under ``mailbeacon serve`` the ingester is a
process of its own (``external``); an app built any other way ingests on its
own event loop, between requests.

API reads call ``caught_up()`` first, so a sender who reads a message right
after its pixel was fetched sees that open: in-process it drains the log;
with an external ingester it waits (a few milliseconds, at most
``_WAIT_SECONDS``) until every log file in the directory is read as far as it
was written when the read began.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Final

from mailbeacon.store import Store
from mailbeacon.store.hitlog import HitLog, written_end
from mailbeacon.store.ingest import Ingester, IngestLocked, log_positions, pending_files

__all__ = ["Ingestion"]

log = logging.getLogger("mailbeacon.server")

_WAIT_SECONDS: Final = 2.0
_POLL_SECONDS: Final = 0.003
_IDLE_SECONDS: Final = 0.005


class Ingestion:
    def __init__(self, store: Store, directory: Path, *, fsync: bool, external: bool) -> None:
        self.store = store
        self.directory = directory
        self.hitlog = HitLog(directory, fsync=fsync)
        self.external = external
        self._ingester: Ingester | None = None
        self._task: asyncio.Task[None] | None = None
        self._has_lock = False

    def start(self) -> None:
        self.hitlog.start()
        if not self.external:
            self._ingester = self.store.ingester(self.directory)
            self._task = asyncio.get_running_loop().create_task(self._ingest_forever())

    def stop(self) -> None:
        """Write what is queued, close this worker's file, and (in-process) ingest what is left."""
        self.hitlog.stop()
        if self._task is not None:
            self._task.cancel()
        if self._ingester is not None and self._lock():
            self._ingester.drain()
            self._ingester.release()

    async def caught_up(self) -> None:
        """Return once hits written so far are in the database (or after ``_WAIT_SECONDS``)."""
        if self._ingester is not None:
            if self._lock():
                self._ingester.drain()
            return
        deadline = time.monotonic() + _WAIT_SECONDS
        # What is written now, not what is unread at each poll: under a steady stream of hits
        # there is nearly always a newer frame unread, and reads waited for a lull (up to the
        # deadline: 0.1-0.9 s a read at ~2,000 hits a second in a local test).
        waiting = self._unread(dict.fromkeys(pending_files(self.directory)))
        while waiting:
            if time.monotonic() > deadline:
                log.warning(
                    "the ingester is more than %.0f s behind; answering from the database", _WAIT_SECONDS
                )
                return
            await asyncio.sleep(_POLL_SECONDS)
            waiting = self._unread(waiting)

    def _unread(self, ends: dict[Path, int | None]) -> dict[Path, int | None]:
        """The files of ``ends`` whose committed read position is short of their end; an end of
        None is found first: where the file's written frames end now."""
        if not ends:
            return {}
        with self.store.engine.connect() as connection:
            positions = log_positions(connection)
        unread: dict[Path, int | None] = {}
        for path, end in ends.items():
            position = positions.get(path.name, 0)
            if end is None:
                end = written_end(path, position)
            # A deleted file was read to its end (the ingester deletes the file before its position).
            if position < end and path.exists():
                unread[path] = end
        return unread

    def _lock(self) -> bool:
        # Several workers built without `serve` share one directory: whoever holds the lock ingests.
        if not self._has_lock and self._ingester is not None:
            try:
                self._ingester.acquire(wait=False)
                self._has_lock = True
            except IngestLocked:
                return False
        return self._has_lock

    async def _ingest_forever(self) -> None:
        assert self._ingester is not None
        while True:
            rows = 0
            try:
                if self._lock():
                    rows = self._ingester.ingest_once()
            except Exception:  # keep ingesting: a database hiccup must not stop it for good
                log.exception("ingest round failed")
            await asyncio.sleep(0 if rows else _IDLE_SECONDS)

    @property
    def counters(self) -> dict[str, Any]:
        return {
            "rows": self.hitlog.rows,
            "batches": self.hitlog.batches,
            "failures": self.hitlog.failures,
            "seconds": self.hitlog.write_seconds,
            "queued": self.hitlog.queued,
        }
