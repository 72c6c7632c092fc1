"""The hit log and its ingester on each real database: every written hit lands once, whatever crashes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from sqlalchemy import func, select

from mailbeacon.server import ingestion as ingestion_module
from mailbeacon.server.ingestion import Ingestion
from mailbeacon.store import EventRow, Store
from mailbeacon.store.hitlog import (
    BATCH,
    END,
    MAGIC,
    SUFFIX,
    HitLog,
    frame,
    writer_alive,
    written_end,
)
from mailbeacon.store.ingest import Ingester, IngestLocked, pending_files
from mailbeacon.store.schema import events, hitlog_positions, recipients


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    opened.upgrade()
    opened.start()
    global ACCOUNT
    ACCOUNT = opened.accounts.ensure("hitlog-tests").id
    made: list[Ingester] = []
    real = opened.ingester

    def ingester(directory: Path) -> Ingester:
        made.append(real(directory))
        return made[-1]

    opened.ingester = ingester  # type: ignore[method-assign]  # release every lock a test took
    try:
        yield opened
    finally:
        for each in made:
            each.release()
        opened.close()


ACCOUNT = ""


def _row(i: int, prefix: str = "m") -> EventRow:
    return EventRow(ACCOUNT, f"{prefix}-{i}", f"r{i}@example.org", "opened", 1_700_000_000.0 + i)


def _write(log: HitLog, rows: list[EventRow]) -> list[bool]:
    async def run() -> list[bool]:
        return list(await asyncio.gather(*(log.record(row) for row in rows)))

    return asyncio.run(run())


def _count(store: Store, prefix: str) -> int:
    with store.engine.connect() as connection:
        query = select(func.count()).select_from(events).where(events.c.message_id.like(f"{prefix}-%"))
        return int(connection.execute(query).scalar_one())


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_written_hits_land_once_and_the_file_goes_after_a_clean_stop(store: Store, tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=True)
    log.start()
    assert all(_write(log, [_row(i, "a") for i in range(300)]))
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.ingest_once() == 300
    assert ingester.ingest_once() == 0  # nothing new: nothing repeated
    assert pending_files(tmp_path) == [log.path]  # its writer (this process) has not closed it
    assert all(_write(log, [_row(i, "a") for i in range(300, 310)]))
    name = log.path.name if log.path else ""
    log.stop()
    assert ingester.drain() == 10
    assert pending_files(tmp_path) == []
    assert _count(store, "a") == 310
    with store.engine.connect() as connection:
        mine = select(hitlog_positions).where(hitlog_positions.c.name == name)
        assert connection.execute(mine).all() == []  # the position row went with its file
        assert connection.execute(select(func.count()).select_from(recipients)).scalar_one() >= 310


def test_a_restarted_ingester_resumes_where_the_last_commit_left_it(store: Store, tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=False)
    log.start()
    _write(log, [_row(i, "b") for i in range(50)])
    first = store.ingester(tmp_path)
    first.acquire()
    assert first.ingest_once() == 50
    first.release()
    _write(log, [_row(i, "b") for i in range(50, 80)])
    second = store.ingester(tmp_path)  # as after a crash: positions come from the database
    second.acquire()
    assert second.ingest_once() == 30
    assert _count(store, "b") == 80


def _records(rows: list[EventRow]) -> bytes:
    return b"".join(msgpack.packb(tuple(row)) for row in rows)


def _batch(rows: list[EventRow]) -> bytes:
    return frame(BATCH, _records(rows))


def test_a_file_is_zero_filled_ahead_while_open_and_trimmed_when_closed(tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=True)
    log.start()
    assert all(_write(log, [_row(i, "z") for i in range(10)]))
    assert log.path is not None
    path = log.path
    data = path.read_bytes()
    whole = len(MAGIC) + len(_batch([_row(i, "z") for i in range(10)]))
    assert data.startswith(MAGIC)
    assert len(data) >= 1 << 20  # written ahead: later syncs overwrite blocks already on disk
    assert data[whole:] == bytes(len(data) - whole)
    log.stop()
    assert path.read_bytes() == data[:whole] + frame(END)  # the fill is given back


def test_written_end_is_where_the_written_frames_end(tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=False)
    log.start()
    path = log.path
    assert path is not None
    assert written_end(path, 0) == len(MAGIC)  # a header and zeros: nothing written
    _write(log, [_row(0)])
    first = len(MAGIC) + len(_batch([_row(0)]))
    _write(log, [_row(1), _row(2)])
    second = first + len(_batch([_row(1), _row(2)]))
    assert written_end(path, 0) == second  # the zero fill after it is not counted
    assert written_end(path, first) == second  # from a committed position on
    assert written_end(path, second) == second
    log.stop()
    assert written_end(path, second) == second + len(frame(END))  # the end frame too
    path.unlink()
    assert written_end(path, 0) == 0  # gone: read to its end and deleted


def test_an_api_read_waits_for_the_hits_written_before_it_not_for_later_ones(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingestion_module, "_WAIT_SECONDS", 0.5)
    log = HitLog(tmp_path, fsync=False)
    log.start()
    path = log.path
    assert path is not None
    _write(log, [_row(i, "before") for i in range(3)])
    before_read = written_end(path, 0)
    waiting = Ingestion(store, tmp_path, fsync=False, external=True)  # an ingester in another process

    def commit_position(position: int) -> None:  # what that ingester commits with the events it read
        with store.engine.begin() as connection:
            connection.execute(hitlog_positions.delete().where(hitlog_positions.c.name == path.name))
            connection.execute(hitlog_positions.insert().values(name=path.name, position=position))

    async def read(position: int | None) -> float:
        started = time.monotonic()
        task = asyncio.create_task(waiting.caught_up())
        await asyncio.sleep(0.05)  # the read has begun: it knows what was written so far
        await asyncio.gather(*(log.record(_row(i, "after")) for i in range(3)))  # hits after it began
        if position is not None:
            commit_position(position)
        await task
        return time.monotonic() - started

    # The hits before the read are ingested, the later ones not: the read goes on at once.
    assert asyncio.run(read(before_read)) < 0.4
    # Part of them only: it waits, until the deadline (then answers from the database).
    commit_position(len(MAGIC))
    assert asyncio.run(read(before_read - 1)) >= 0.5
    log.stop()


def test_a_crashed_writers_torn_frame_is_dropped_and_its_file_removed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01crash-{_dead_pid()}{SUFFIX}"
    torn = _batch([_row(i, "c") for i in range(20, 25)])[
        :-7
    ]  # the write the crash interrupted: never answered
    path.write_bytes(MAGIC + _batch([_row(i, "c") for i in range(20)]) + torn + bytes(5000))
    assert not writer_alive(path)
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.drain() == 20
    assert not path.exists()
    assert _count(store, "c") == 20


@pytest.mark.parametrize("seen", [3, 9, 40], ids=["half-a-header", "a-header", "part-of-the-payload"])
def test_a_live_writers_frame_in_progress_waits_for_the_rest(store: Store, tmp_path: Path, seen: int) -> None:
    # A reader may see part of a write: whatever part, it takes nothing until the frame is whole.
    path = tmp_path / f"01live{seen}-{os.getpid()}{SUFFIX}"
    prefix = f"d{seen}"
    first, second = _batch([_row(0, prefix)]), _batch([_row(1, prefix), _row(2, prefix)])
    path.write_bytes(MAGIC + first + second[:seen] + bytes(4096))
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.ingest_once() == 1
    assert ingester.ingest_once() == 0
    assert path.exists()
    with path.open("r+b") as handle:
        handle.seek(len(MAGIC) + len(first))
        handle.write(second + frame(END))
    assert ingester.drain() == 2
    assert not path.exists()
    assert _count(store, prefix) == 3


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("checksum", frame(BATCH, b"\x93\x01\x02\x03")[:-1] + b"\x04"),  # and a written frame follows
        ("kind", b"\x07" + bytes(8)),  # no such frame kind
        ("msgpack", frame(BATCH, b"\xc1\xc1\xc1")),  # checksummed, but not msgpack
        ("row", frame(BATCH, msgpack.packb(["not", "a", "row"]))),  # msgpack, but not an event row
    ],
)
def test_a_damaged_file_is_moved_aside_keeping_what_came_before(
    store: Store, tmp_path: Path, name: str, bad: bytes
) -> None:
    path = tmp_path / f"{name}-{os.getpid()}{SUFFIX}"  # a live writer: damage is not a torn tail
    path.write_bytes(MAGIC + _batch([_row(0, name)]) + bad + _batch([_row(1, name)]) + frame(END))
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.drain() == 1
    assert not path.exists()
    assert (tmp_path / (path.name + ".bad")).exists()
    assert _count(store, name) == 1


# Files of the first format (no header, msgpack records back to back, a nil record at the
# end) are still read: a crashed older server may have left some.


def test_first_format_a_crashed_writers_torn_tail_is_dropped(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01crash-{_dead_pid()}{SUFFIX}"
    torn = msgpack.packb(tuple(_row(20, "g")))[:-7]
    path.write_bytes(_records([_row(i, "g") for i in range(20)]) + torn)
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.drain() == 20
    assert not path.exists()
    assert _count(store, "g") == 20


def test_first_format_a_live_writers_partial_record_waits_for_the_rest(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01live-{os.getpid()}{SUFFIX}"
    record = msgpack.packb(tuple(_row(0, "h")))
    path.write_bytes(record[:10])
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.ingest_once() == 0
    with path.open("ab") as handle:
        handle.write(record[10:] + msgpack.packb(None))
    assert ingester.drain() == 1
    assert not path.exists()
    assert _count(store, "h") == 1


def test_first_format_a_damaged_file_is_moved_aside(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01bad-{_dead_pid()}{SUFFIX}"
    path.write_bytes(msgpack.packb(tuple(_row(0, "i"))) + msgpack.packb(["not", "a", "row"]) + b"\xc1" * 40)
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.drain() == 1
    assert not path.exists()
    assert (tmp_path / (path.name + ".bad")).exists()
    assert _count(store, "i") == 1


def test_rotated_files_are_all_ingested_in_order(store: Store, tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=False, rotate_bytes=2000)
    log.start()
    for start in range(0, 200, 20):  # ten group writes, a new file every ~2 KB
        _write(log, [_row(i, "e") for i in range(start, start + 20)])
    assert len(pending_files(tmp_path)) > 3
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    ingester.drain()
    assert pending_files(tmp_path) == [log.path]  # only the open one is left
    assert _count(store, "e") == 200


def test_one_ingester_per_directory(store: Store, tmp_path: Path) -> None:
    holder = store.ingester(tmp_path)
    holder.acquire()
    with pytest.raises(IngestLocked, match="another ingester"):
        store.ingester(tmp_path).acquire(wait=False)
    holder.release()
    store.ingester(tmp_path).acquire(wait=False)


def test_a_record_is_refused_after_stop(tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=False)
    log.start()
    log.stop()
    assert _write(log, [_row(0)]) == [False]


def test_each_round_reports_how_far_behind_the_hits_it_is(store: Store, tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=False)
    log.start()
    now = time.time()
    _write(log, [_row(i, "lag")._replace(at=now - 30 + i) for i in range(3)])  # the oldest is 30 s old
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    seen: list[float] = []
    ingester.after_round = seen.append
    ingester.run(lambda: len(seen) >= 2, idle=0.001)
    assert 29 < seen[0] < 40  # the round's oldest hit, not its newest
    assert seen[1] == 0.0  # a round with nothing to read is not behind
    assert _count(store, "lag") == 3


def test_a_busy_round_waits_as_long_as_pause_after_asks(store: Store, tmp_path: Path) -> None:
    log = HitLog(tmp_path, fsync=False)
    log.start()
    _write(log, [_row(i, "paced") for i in range(100)])  # a busy round: 64 rows or more
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    took: list[float] = []
    rounds: list[float] = []
    ingester.pause_after = lambda seconds: took.append(seconds) or 0.3
    ingester.after_round = lambda _lag: rounds.append(time.monotonic())
    ingester.run(lambda: len(rounds) >= 2, idle=0.001)
    assert len(took) == 1  # asked once, after the busy round,
    assert took[0] > 0  # with its duration
    assert rounds[1] - rounds[0] >= 0.3  # and the next round waited that long
    assert _count(store, "paced") == 100
