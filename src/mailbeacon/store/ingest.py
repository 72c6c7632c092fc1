"""The ingester: moves hits from the hit log (``store.hitlog``) into the database, exactly once.

Each round reads what the log files gained since the last round, and commits
those events, their status projection and the new read positions of the
files in one transaction (``Recorder.write``), so a crash at any point
neither loses nor repeats a hit: the next round starts from the positions
that were committed with the events. A file is deleted once it is read to
its end mark, or to its end when its writer process is gone; then its
position row.

One ingester works on a directory at a time: it holds an exclusive
``flock`` on ``hits/ingest.lock`` while it runs, so a leftover ingester of
an earlier server and a new one never both read a file.

``mailbeacon serve`` runs it in a process of its own (``run_process``) and
drains every file a crashed server left before it starts listening; an app
built without ``serve`` runs it on its own event loop (``server.app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from sqlalchemy import select

from mailbeacon.store.engine import is_sqlite
from mailbeacon.store.hitlog import SUFFIX, DamagedLog, read_records, writer_alive
from mailbeacon.store.priority import BackgroundPriority
from mailbeacon.store.recorder import EventRow, Recorder
from mailbeacon.store.schema import hitlog_positions
from mailbeacon.store.wakeup import HTTP, INGESTER, WakeReceiver, WakeSender

__all__ = ["IngestLocked", "Ingester", "log_positions", "pending_files"]

log = logging.getLogger("mailbeacon.ingest")

_BATCH_ROWS: Final = 5000
_FIELDS: Final = len(EventRow._fields)
_BUSY_ROWS: Final = 64  # a round this large means hits are arriving faster than one at a time
_BUSY_PAUSE: Final = 0.02  # seconds before the next round then


class IngestLocked(Exception):
    """Another ingester holds this directory."""


def pending_files(directory: Path) -> list[Path]:
    """The hit log files in ``directory``, oldest first (their names start with a time-ordered id)."""
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
    except FileNotFoundError:
        return []


def log_positions(connection: Any) -> dict[str, int]:
    """The committed read position of every hit log file (a SQLAlchemy connection)."""
    rows = connection.execute(select(hitlog_positions.c.name, hitlog_positions.c.position))
    return {name: int(position) for name, position in rows}


@dataclass
class _Read:
    path: Path
    start: int
    end: int  # position after the last whole frame read
    rows: list[EventRow] = field(default_factory=list)
    complete: bool = False  # the end mark was read, or the writer is gone and nothing follows


class Ingester:
    """Reads ``directory``'s hit log files into ``recorder``'s database."""

    def __init__(self, recorder: Recorder, engine: Any, directory: Path) -> None:
        self.recorder = recorder
        self.engine = engine
        self.directory = directory
        self._positions: dict[str, int] | None = None
        self._lock: IO[bytes] | None = None
        marks = "?" if engine.dialect.name == "sqlite" else "%s"
        self._upsert = (
            f"INSERT INTO mb_hitlog (name, position) VALUES ({marks}, {marks}) "  # noqa: S608
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
        )
        self._forget = f"DELETE FROM mb_hitlog WHERE name = {marks}"  # noqa: S608
        self.rows = 0  # ingested by this ingester
        self.idle_work: Callable[[], bool] | None = None  # work for the lulls (the reviser's); True if done
        self.final_work: Callable[[], bool] | None = None  # the same at shutdown, if it differs
        self.failed_rounds = 0  # consecutive rounds whose commit failed (the database is down, ...)
        self.lag = 0.0  # age in seconds of the last round's oldest hit (0 when it had none)
        self.after_round: Callable[[float], None] | None = None  # called with ``lag`` (store.priority)
        # Seconds to wait after a busy round, given the seconds it took (store.priority's pacing).
        self.pause_after: Callable[[float], float] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def acquire(self, *, wait: bool = True) -> None:
        """Take the directory's lock (raise ``IngestLocked`` if ``wait`` is false and it is taken)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.directory / "ingest.lock", "ab")  # noqa: SIM115 (held for the ingester's life)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            raise IngestLocked(f"another ingester is working on {self.directory}") from None
        self._lock = handle

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # -- work -------------------------------------------------------------------------------

    def ingest_once(self) -> int:
        """One round: commit what the files gained; delete the files that are done. Returns rows."""
        if self._positions is None:
            with self.engine.connect() as connection:
                self._positions = log_positions(connection)
        reads = [read for path in pending_files(self.directory) if (read := self._read(path)) is not None]
        rows = [row for read in reads for row in read.rows]
        # Each file is in time order, so its first row is its oldest.
        oldest = min((read.rows[0].at for read in reads if read.rows), default=None)
        self.lag = 0.0 if oldest is None else max(0.0, time.time() - oldest)
        moved = [read for read in reads if read.end != read.start]
        if moved:
            positions = [(read.path.name, read.end) for read in moved]
            if not self.recorder.write(rows, lambda cursor: cursor.executemany(self._upsert, positions)):
                self.failed_rounds += 1  # logged by the recorder; the same bytes are read again next round
                return 0
            self.failed_rounds = 0
            for read in moved:
                self._positions[read.path.name] = read.end
            self.rows += len(rows)
        for read in reads:
            if read.complete:
                self._remove(read.path)
        return len(rows)

    def drain(self) -> int:
        """Rounds until nothing is left to read; returns rows."""
        total = 0
        while (rows := self.ingest_once()) > 0:
            total += rows
        return total

    def run(self, stop: Callable[[], bool], *, idle: float = 0.01) -> None:
        """Ingest until ``stop()``; then a last drain of what the stopped writers left."""
        asyncio.run(self.run_async(stop, idle=idle))

    async def run_async(self, stop: Callable[[], bool], *, idle: float = 0.01) -> None:
        """``run`` on a running event loop, which it shares with other work (the delivery
        worker): a round runs on the loop's thread, and the loop gets a turn after each."""
        while not stop():
            started = time.perf_counter()
            rows = self.ingest_once()
            took = time.perf_counter() - started
            if self.after_round is not None:
                self.after_round(self.lag)
            if rows == 0:
                if not self.failed_rounds and self.idle_work is not None and self.idle_work():
                    await asyncio.sleep(0)
                    continue
                # Idle, or the database refused the batch: then back off, up to a second between tries.
                await asyncio.sleep(min(1.0, idle * 2 ** min(self.failed_rounds, 7)))
            elif rows >= _BUSY_ROWS:
                # Under load, let the next batch grow: each commit rewrites the index pages it
                # touched (and, with synchronous=full, syncs), so a round of ~100 rows cost
                # ~24 µs a row of CPU and one of a few hundred ~15. Measured with wrk on
                # SQLite full: the ingester's CPU went from ~0.7 to ~0.47 of a core, and the
                # server answered ~8 % more hits; a trickle (under _BUSY_ROWS a round) is
                # still ingested at once.
                paced = self.pause_after(took) if self.pause_after is not None else 0.0
                await asyncio.sleep(max(_BUSY_PAUSE, paced))
            else:
                await asyncio.sleep(0)
        self.drain()
        final = self.final_work or self.idle_work
        if final is not None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and final():
                pass

    def _read(self, path: Path) -> _Read | None:
        assert self._positions is not None
        start = self._positions.get(path.name, 0)
        alive = writer_alive(path)  # before reading: if it is gone now, all it wrote is in the file
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        read = _Read(path, start, start)
        damage: DamagedLog | None = None
        try:
            found = read_records(fd, start, max_records=_BATCH_ROWS)
        except DamagedLog as exc:
            found, damage = exc.read, exc
        finally:
            os.close(fd)
        for record in found.records:
            if not isinstance(record, tuple) or len(record) != _FIELDS:
                damage = damage or DamagedLog(f"a record is not an event row: {record!r:.200}", found)
                break
            read.rows.append(EventRow(*record))
        read.end = found.end
        if damage is not None:
            # Not a file this code wrote: keep it aside for a person, and keep what came before.
            self._quarantine(path, read, damage)
            return read
        # A crashed writer: what follows the last whole frame is a torn one, or nothing.
        read.complete = found.ended or (not alive and not found.more)
        return read

    def _quarantine(self, path: Path, read: _Read, exc: Exception) -> None:
        bad = path.with_name(path.name + ".bad")
        log.error("hit log %s is damaged after byte %d (%s); moved to %s", path, read.end, exc, bad)
        try:
            path.rename(bad)
        except OSError:
            log.exception("could not move %s aside", path)

    def _remove(self, path: Path) -> None:
        assert self._positions is not None
        # First the file: a position row without its file is harmless, the reverse would read it twice.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with self.engine.begin() as connection:
            connection.exec_driver_sql(self._forget, (path.name,))
        self._positions.pop(path.name, None)


def run_process(parent: int, stop: Any, ready: Any) -> None:
    """Entry point of the ingester process ``mailbeacon serve`` forks before it serves anything.

    Startup happens here, so the supervisor never imports the store: migrate the schema,
    take the hit log's lock (waiting up to 15 s for a leftover ingester of a killed server
    to finish its last drain), ingest what a crashed run left, then send
    ``("ready", recovered)`` on ``ready`` (a ``Connection``), or ``("error", message)`` and
    exit. Then it ingests until ``stop`` (an Event) is set or ``parent`` is gone (a
    ``kill -9`` of the server), and drains once more.
    """
    from mailbeacon.classify_data import classifier_for
    from mailbeacon.config import Settings
    from mailbeacon.core.errors import MailbeaconError
    from mailbeacon.server.runtime import configure_logging, open_store, tune_gc

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's supervisor tells us when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        store = open_store(settings)
        store.upgrade()
        store.reviser.classifier = classifier_for(settings)  # revise what this process commits
        store.recorder.start()
        store.reviser.start(thread=False)  # revisions run in the ingester's lulls, see Reviser.run_pending
        ingester = store.ingester(settings.data_dir / "hits")
        _acquire(ingester, deadline=time.monotonic() + 15)
        recovered = ingester.drain()
    except (MailbeaconError, OSError) as exc:
        ready.send(("error", str(exc)))
        return
    except Exception as exc:  # a bug, or a database that refuses us: the log has the traceback
        log.exception("the ingester could not start")
        ready.send(("error", f"the ingester could not start: {type(exc).__name__}: {exc}"))
        return
    ready.send(("ready", recovered))
    ready.close()
    # Background work yields the CPU to the request path: measured on 2 cores
    # (benchmarks/webhooks.py), deliveries to 10 endpoints otherwise took a third of
    # the tracking throughput under load. Where cores are free, it changes nothing.
    with contextlib.suppress(OSError):
        os.nice(settings.background_nice)
    # store.priority says why; SQLite's work is this process's own, in the idle class.
    priority = BackgroundPriority(settings.background_max_lag, pace=not is_sqlite(store.engine))
    priority.start()
    ingester.after_round = priority.after_round
    ingester.pause_after = priority.pause
    ingester.idle_work = lambda: store.reviser.run_pending(0.05, settle=0.25)
    ingester.final_work = lambda: store.reviser.run_pending(0.05)
    delivery = _delivery_worker(store, settings)
    wake_http = WakeSender(settings.data_dir, HTTP)  # the HTTP workers' stream hubs, after each commit
    store.recorder.listeners.append(wake_http)
    tune_gc()
    try:
        _run_loop(
            _ingest_and_deliver(
                ingester, delivery, settings.data_dir, lambda: stop.is_set() or os.getppid() != parent
            )
        )
    finally:
        wake_http.close()
        ingester.release()
        store.close()


def _delivery_worker(store: Any, settings: Any) -> Any:
    """The webhook worker of ``serve`` (None with MAILBEACON_WEBHOOK_WORKER=false), woken by
    this process's commits; its database calls share the loop with the ingester's."""
    if not settings.webhook_worker:
        return None
    from mailbeacon.webhooks.worker import DeliveryWorker

    worker = DeliveryWorker.from_settings(store, settings, db_on_loop=True)
    store.recorder.listeners.append(worker.wake)
    return worker


async def _ingest_and_deliver(
    ingester: Ingester, delivery: Any, data_dir: Path, stop: Callable[[], bool]
) -> None:
    woken = None
    if delivery is not None:
        delivery.start()
        # The HTTP workers' commits (API events) and queued test or replay deliveries wake it.
        woken = WakeReceiver.bind(data_dir, INGESTER)
        if woken is not None:
            woken.attach(asyncio.get_running_loop(), delivery.wake)
    try:
        await ingester.run_async(stop)
    finally:
        if woken is not None:
            woken.close()
        if delivery is not None:
            await delivery.stop()  # records the attempts that finished


def _run_loop(main: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a server dependency except on Windows
        asyncio.run(main)
    else:
        uvloop.run(main)


def _acquire(ingester: Ingester, deadline: float) -> None:
    from mailbeacon.core.errors import ConfigError

    while True:
        try:
            ingester.acquire(wait=False)
            return
        except IngestLocked:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"another mailbeacon server is using {ingester.directory} (its ingester holds "
                    "the lock); stop it, or give this one its own MAILBEACON_DATA_DIR"
                ) from None
            time.sleep(0.1)
