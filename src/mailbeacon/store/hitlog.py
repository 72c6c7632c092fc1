"""The hit log: where a tracking hit becomes durable before its response is sent.

A pixel or click hit is appended to a local file, not inserted into the
database, on the request path. Appending a batch of records is one
``write(2)`` (and, with ``synchronous=full``, one ``fdatasync``), about a
microsecond per hit; the database insert, the status projection and the
outbox cost some 30 µs per hit in Python and run in the ingester
(``store.ingest``), in a process of its own, so they use the second core
instead of the request loop's time.

Each server worker writes its own files, ``<time-ordered id>-<pid>.hits``
in ``DATA_DIR/hits``. A file is a plain sequence of msgpack records: each hit
is the tuple of an ``EventRow``; a ``nil`` record marks the end (written on
rotation and on a clean stop). A file without that mark whose writer process
is gone ended in a crash: what it holds was written before the responses it
answered, and a torn record at its tail belongs to a response that was never
sent, so the ingester drops it.

Group commit works as in ``store.recorder`` (``store.group``): every request
that reached the loop in the same turn shares one write.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Final, overload

import msgpack

from mailbeacon.store.group import GroupCommit, W, Waiter
from mailbeacon.store.ids import new_id
from mailbeacon.store.recorder import EventRow

__all__ = ["END", "SUFFIX", "HitLog", "writer_alive"]

log = logging.getLogger("mailbeacon.hitlog")

SUFFIX: Final = ".hits"
END: Final = msgpack.packb(None)  # the end-of-file record
_ROTATE_BYTES: Final = 64 * 1024 * 1024


def writer_alive(path: Path) -> bool:
    """Whether the process that writes ``path`` (its pid ends the name) is still running."""
    try:
        pid = int(path.stem.rpartition("-")[2])
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class HitLog:
    """This process's appender: ``await hitlog.record(row)`` returns once the hit is on disk."""

    def __init__(self, directory: Path, *, fsync: bool = True, rotate_bytes: int = _ROTATE_BYTES) -> None:
        self.directory = directory
        self._fsync = fsync
        self._rotate_bytes = rotate_bytes
        self._packer = msgpack.Packer()
        self._group = GroupCommit(self._write_batch)
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        # Plain counters, read by /metrics.
        self.rows = 0
        self.batches = 0
        self.failures = 0
        self.write_seconds = 0.0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open()
        self._group.closed = False

    @property
    def queued(self) -> int:
        return self._group.queued

    @property
    def path(self) -> Path | None:
        return self._path

    @overload
    def record(self, row: EventRow) -> asyncio.Future[bool]: ...

    @overload
    def record(self, row: EventRow, waiter: W) -> W: ...

    def record(self, row: EventRow, waiter: Waiter | None = None) -> Waiter:
        """Queue ``row``; the future (or ``waiter``, see ``store.group``) gets True once it is
        written (and synced), False if not."""
        packed = self._packer.pack(row)  # a NamedTuple packs as the array of its fields
        return self._group.submit(packed) if waiter is None else self._group.submit(packed, waiter)

    def flush(self) -> None:
        """Write everything queued in one append (runs on the loop; also called on stop)."""
        self._group.flush()

    def stop(self) -> None:
        """Write what is queued, mark the file complete and close it (graceful shutdown)."""
        self._group.closed = True
        self._group.flush()
        self._close()

    def _write_batch(self, records: list[bytes]) -> bool:
        started = time.perf_counter()
        ok = self._fd is not None and self._append(b"".join(records))
        self.write_seconds += time.perf_counter() - started
        if not ok:
            self.failures += len(records)
            return False
        self.rows += len(records)
        self.batches += 1
        if self._size >= self._rotate_bytes:
            self._close()
            self._open()
        return True

    def _open(self) -> None:
        self._path = self.directory / f"{new_id()}-{os.getpid()}{SUFFIX}"
        self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._size = 0

    def _close(self) -> None:
        if self._fd is None:
            return
        self._append(END)
        os.close(self._fd)
        self._fd = None

    def _append(self, data: bytes) -> bool:
        assert self._fd is not None
        try:
            view = memoryview(data)
            while view:  # a regular file takes it all at once; loop for the odd short write
                view = view[os.write(self._fd, view) :]
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError:
            log.exception("could not append %d bytes to %s", len(data), self._path)
            try:  # cut a partial write back to the last whole record, so later appends stay readable
                os.ftruncate(self._fd, self._size)
            except OSError:
                log.exception("could not truncate %s; starting a new file", self._path)
                os.close(self._fd)
                self._fd = None
                self._open()
            return False
        self._size += len(data)
        return True
