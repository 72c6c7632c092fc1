"""Wake-ups between the processes of one ``mailbeacon serve``: "the database has something new".

The ingester process commits hits, which the HTTP workers' stream hubs would
otherwise see only at their next poll (every 50 ms: most of a stream's
latency); the HTTP workers commit API events and queue test and replay
deliveries, which the ingester's delivery worker would otherwise see only at
its next poll (up to a second). So each process that wants wake-ups binds a
Unix datagram socket ``<data dir>/wake/<role>-<pid>.sock`` (``WakeReceiver``),
and after a commit the other side sends one byte to every socket of that role
(``WakeSender``).

Wake-ups are lossy on purpose and carry nothing: a full socket buffer means a
wake-up is already pending, a dead process's socket is removed by the next
sender, and the polls stay as the backstop (and as the only path between
machines sharing a PostgreSQL database). The socket module is the whole of
it, so there is no library to reach for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["WakeReceiver", "WakeSender"]

log = logging.getLogger("mailbeacon.wakeup")

INGESTER = "ingester"
HTTP = "http"
_REFRESH_S = 1.0  # how often a sender looks for new receivers (a restarted worker)
_MAX_PATH = 100  # AF_UNIX paths are limited to 107 bytes; longer data dirs fall back to polling


def _folder(data_dir: Path) -> Path:
    return Path(data_dir) / "wake"


class WakeReceiver:
    """This process's socket: calls ``callback`` on the event loop when another process wakes it."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._socket = sock
        self.path = path
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def bind(cls, data_dir: Path, role: str) -> WakeReceiver | None:
        """A bound receiver, or None where the platform or the path length does not allow one
        (then the poll is all there is; it is logged once)."""
        folder = _folder(data_dir)
        path = folder / f"{role}-{os.getpid()}.sock"
        if not hasattr(socket, "AF_UNIX") or len(os.fsencode(path)) > _MAX_PATH:
            log.info("no wake-up socket at %s (platform or path length): polling only", path)
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # a socket a process with this pid left behind
            sock.bind(os.fspath(path))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            log.warning("no wake-up socket at %s (%s): polling only", path, exc)
            return None
        return cls(sock, path)

    def attach(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]) -> None:
        def readable() -> None:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while self._socket.recv(64):  # drain: many wake-ups are one
                    pass
            callback()

        self._loop = loop
        loop.add_reader(self._socket.fileno(), readable)

    def close(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


class WakeSender:
    """Sends a wake-up to every receiver of ``role``; a recorder listener (``__call__(rows)``)."""

    def __init__(self, data_dir: Path, role: str) -> None:
        self._folder = _folder(data_dir)
        self._prefix = f"{role}-"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._targets: list[str] = []
        self._looked = -_REFRESH_S
        self.sent = 0

    def __call__(self, _rows: Any = None) -> None:
        now = time.monotonic()
        if now - self._looked >= _REFRESH_S:
            self._looked = now
            self._targets = self._find()
        for target in self._targets:
            try:
                self._socket.sendto(b"!", target)
                self.sent += 1
            except (BlockingIOError, InterruptedError):
                pass  # its buffer is full: it has wake-ups pending already
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # its process is gone
                    os.unlink(target)
                self._looked = -_REFRESH_S
            except OSError as exc:  # never let a wake-up fail a commit
                log.debug("wake-up to %s failed: %s", target, exc)

    def _find(self) -> list[str]:
        try:
            with os.scandir(self._folder) as found:
                return [e.path for e in found if e.name.startswith(self._prefix) and e.name.endswith(".sock")]
        except OSError:
            return []

    def close(self) -> None:
        self._socket.close()
