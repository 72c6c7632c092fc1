"""The hit log and its ingester on each real database: every written hit lands once, whatever crashes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from sqlalchemy import func, select

from mailbeacon.store import EventRow, Store
from mailbeacon.store.hitlog import END, SUFFIX, HitLog, writer_alive
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


def test_a_crashed_writers_torn_tail_is_dropped_and_its_file_removed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01crash-{_dead_pid()}{SUFFIX}"
    whole = b"".join(msgpack.packb(tuple(_row(i, "c"))) for i in range(20))
    torn = msgpack.packb(tuple(_row(20, "c")))[:-7]  # the write the crash interrupted: never answered
    path.write_bytes(whole + torn)
    assert not writer_alive(path)
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.drain() == 20
    assert not path.exists()
    assert _count(store, "c") == 20


def test_a_live_writers_partial_record_waits_for_the_rest(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01live-{os.getpid()}{SUFFIX}"
    record = msgpack.packb(tuple(_row(0, "d")))
    path.write_bytes(record[:10])
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.ingest_once() == 0
    with path.open("ab") as handle:
        handle.write(record[10:] + END)
    assert ingester.drain() == 1
    assert not path.exists()
    assert _count(store, "d") == 1


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


def test_a_damaged_file_is_moved_aside_keeping_what_came_before(store: Store, tmp_path: Path) -> None:
    path = tmp_path / f"01bad-{_dead_pid()}{SUFFIX}"
    path.write_bytes(msgpack.packb(tuple(_row(0, "f"))) + msgpack.packb(["not", "a", "row"]) + b"\xc1" * 40)
    ingester = store.ingester(tmp_path)
    ingester.acquire()
    assert ingester.drain() == 1
    assert not path.exists()
    assert (tmp_path / (path.name + ".bad")).exists()
    assert _count(store, "f") == 1


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
