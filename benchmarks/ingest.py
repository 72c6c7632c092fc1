"""Ingest benchmark: what moving one hit from the hit log into the database costs, per database.

Run ``.venv/bin/python benchmarks/ingest.py`` (``make bench-ingest``); ``--json`` for machines.

Why it exists
-------------
``mailbeacon serve`` answers a pixel after appending it to the hit log; the ingester, a
process of its own, moves it into the database (``store.ingest``). On a two-core machine the
ingester and the database server share the CPU with the HTTP process and ``wrk``, so every
microsecond they spend per row is taken from the tracking throughput ``benchmarks/server.py``
measures, and a row rate below the hit rate means the database falls behind. This script
isolates that cost. It has no target of its own and no anchor: read it next to
``benchmarks/server.py``'s req/s (the ingester keeps up when its rows/s, at its CPU share,
is above them).

What it does
------------
For SQLite ``synchronous=normal``, ``full`` and PostgreSQL (a fresh database, dropped after):
a store is migrated, ``--warm`` (70,000, about what the server benchmark's warm-up leaves)
hits are ingested first, then ``--rows`` (100,000) hits on distinct messages, written as the
server writes them (msgpack ``EventRow`` records in a ``.hits`` file), are drained by the
real ``Ingester`` in its usual rounds of up to 5,000 rows. Reported per row: wall time, the
ingester's CPU, and on PostgreSQL the CPU of every ``postgres`` process on the machine
(backend, WAL writer, checkpointer: all of it is taken from the same two cores). Each
database's run checks that ``mb_events`` grew by exactly the rows written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server import DEFAULT_POSTGRES, SetupError, postgres_database

_AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
_HEADERS = '{"accept":"image/avif,image/webp,*/*","accept-language":"en-US,en;q=0.9"}'


def postgres_cpu_seconds() -> float:
    """CPU used so far by every process of the ``postgres`` user (0.0 where there is none)."""
    found = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True, check=False)
    ticks = 0
    for pid in found.stdout.split():
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def write_hits(path: Path, account: str, prefix: str, count: int) -> None:
    """``count`` hits on distinct messages, as the server's hit log holds them (a frame per 48,
    about what a group write carries under wrk's 64 connections)."""
    import msgpack

    from mailbeacon.store.hitlog import BATCH, END, MAGIC, frame
    from mailbeacon.store.recorder import EventRow

    packer = msgpack.Packer()
    now = time.time()
    records: list[bytes] = []
    with open(path, "wb") as file:
        file.write(MAGIC)
        for i in range(count):
            human = i % 3 != 0  # a mix of opens and machine fetches, as classification gives
            row = EventRow(
                account,
                f"{prefix}-{i:08d}",
                f"r{i}@example.test",
                "opened" if human else "fetched",
                now + i * 1e-5,
                classification="human" if human else "machine",
                reasons="" if human else "proxy.google",
                confidence=0.6 if human else 0.95,
                method="GET",
                ip="192.0.2.10",
                user_agent=_AGENT,
                headers=_HEADERS,
            )
            records.append(packer.pack(row))
            if len(records) == 48 or i == count - 1:
                file.write(frame(BATCH, b"".join(records)))
                records.clear()
        file.write(frame(END))


def measure(name: str, url: str, synchronous: str, rows: int, warm: int) -> dict[str, Any]:
    from sqlalchemy import text

    from mailbeacon.server.runtime import tune_gc
    from mailbeacon.store import Store

    with tempfile.TemporaryDirectory(prefix="mb-bench-ingest-") as tmp:
        hits = Path(tmp) / "hits"
        hits.mkdir()
        store = Store(url.replace("{tmp}", tmp), sqlite_synchronous=synchronous)
        try:
            store.upgrade()
            store.recorder.start()
            account = store.accounts.ensure("bench").id
            ingester = store.ingester(hits)
            ingester.acquire()
            # Named as the hit log names files (<id>-<pid>.hits); pid 1 is alive, so the end mark
            # is what completes each file.
            write_hits(hits / "00000000000000000000000001-1.hits", account, "warm", warm)
            ingester.drain()
            write_hits(hits / "00000000000000000000000002-1.hits", account, "timed", rows)
            with store.engine.connect() as connection:
                before = connection.execute(text("SELECT count(*) FROM mb_events")).scalar_one()
            tune_gc()  # as in the ingester process
            database_cpu, cpu, wall = postgres_cpu_seconds(), time.process_time(), time.perf_counter()
            drained = ingester.drain()
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            database_cpu = postgres_cpu_seconds() - database_cpu if url.startswith("postgresql") else 0.0
            with store.engine.connect() as connection:
                after = connection.execute(text("SELECT count(*) FROM mb_events")).scalar_one()
            ingester.release()
        finally:
            store.close()
    if drained != rows or after - before != rows:
        raise SetupError(f"{name}: drained {drained:,} and stored {after - before:,} of {rows:,} rows")
    return {
        "name": name,
        "rows": rows,
        "rows_per_second": rows / wall,
        "wall_us": 1e6 * wall / rows,
        "ingester_cpu_us": 1e6 * cpu / rows,
        "database_cpu_us": 1e6 * database_cpu / rows,
    }


@contextlib.contextmanager
def databases(args: argparse.Namespace) -> Iterator[list[tuple[str, str, str]]]:
    chosen = [
        ("SQLite normal", "sqlite:///{tmp}/mailbeacon.db", "normal"),
        ("SQLite full", "sqlite:///{tmp}/mailbeacon.db", "full"),
    ]
    if args.postgres_url == "none":
        yield chosen
        return
    url = args.postgres_url or os.environ.get("MAILBEACON_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    with postgres_database(url, "ingest") as fresh:
        yield [*chosen, ("PostgreSQL", fresh, "full")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000, help="timed hits per database")
    parser.add_argument("--warm", type=int, default=70_000, help="hits ingested before the timed ones")
    parser.add_argument("--postgres-url", help="server to create the run's database on ('none': skip)")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    args = parser.parse_args()
    try:
        with databases(args) as chosen:
            results = [measure(name, url, sync, args.rows, args.warm) for name, url, sync in chosen]
    except SetupError as exc:
        print(f"benchmarks/ingest.py: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.rows:,} hits on distinct messages after {args.warm:,} warm-up hits, per row:")
    print(f"{'database':16} {'rows/s':>9} {'wall µs':>8} {'ingester CPU µs':>16} {'database CPU µs':>16}")
    for row in results:
        database = (
            f"{row['database_cpu_us']:16.1f}" if row["name"] == "PostgreSQL" else f"{'(in ingester)':>16}"
        )
        print(
            f"{row['name']:16} {row['rows_per_second']:9,.0f} {row['wall_us']:8.1f} "
            f"{row['ingester_cpu_us']:16.1f} {database}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
