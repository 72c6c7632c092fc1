"""Hit cost: what one tracking hit costs ``mailbeacon serve``'s HTTP process, without the network.

Run ``.venv/bin/python benchmarks/hit_cost.py`` (``make bench-hit``); ``--json`` for machines,
``--instructions`` to count instructions with callgrind instead of timing.

Why it exists
-------------
``benchmarks/server.py`` measures the whole server under ``wrk``, and on these shared machines
its req/s moves by 10-20 % between identical runs: a change that saves 5 % of a hit's CPU
cannot be seen there. This script isolates the part of a hit that is Python, in one process:
the HTTP protocol (``server.fastpath``) parsing the request, ``TrackingEndpoints.answer``
verifying the token, classifying and building the row, the hit log's group write and the
response bytes. No socket, no ``wrk``, no database: the socket system calls, the disk sync and
the ingester are what ``server.py`` adds. It has no target and no anchor; compare a change
against the code before it, in the same way.

What it does
------------
The app is built as ``mailbeacon serve`` builds its worker (``create_app`` with an external
ingester, so nothing reads the hit log; SQLite in a temporary data directory;
``synchronous=normal``, so the hit log is written but not synced). ``--connections`` (64, as
``server.py``'s ``wrk -c64``) instances of the real ``TrackingProtocol`` get a transport that
only counts what is written. Each turn of the loop, every connection receives one request,
``wrk``'s shape (``GET /o/<token>``, a ``Host`` header) with a token never seen before, then
the loop runs the group write that answers them. ``--warm`` hits first, then ``--hits`` timed.
The run fails unless every hit was answered and written to the hit log.

Reported: CPU µs per hit (``time.process_time``). With ``--instructions`` the script runs
itself twice under ``valgrind --tool=callgrind`` (``--warm`` + 2,000 and ``--warm`` + ``--hits``
hits) and reports the difference in instructions over the difference in hits: the same count
on every run of the same code, whatever else the machine is doing (startup cancels out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from server import SetupError, mailbeacon_urls

_SMALL = 2_000  # timed hits of the shorter callgrind run


class _Transport:
    """What uvicorn's protocol calls on its transport; writes are counted, not sent."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, _data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        return None

    def pause_reading(self) -> None:
        return None

    def resume_reading(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)


async def drive(
    data_dir: Path, keys: str, paths: list[str], hits: int, warm: int, connections: int
) -> dict[str, Any]:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from mailbeacon.config import Settings
    from mailbeacon.server.app import create_app
    from mailbeacon.server.fastpath import TrackingProtocol
    from mailbeacon.server.runtime import open_store, tune_gc

    settings = Settings.from_env(
        {
            "MAILBEACON_DATA_DIR": str(data_dir),
            "MAILBEACON_KEYS": keys,
            "MAILBEACON_SQLITE_SYNCHRONOUS": "normal",
        }
    )
    store = open_store(settings)
    store.upgrade()
    assert settings.keys is not None
    app = create_app(settings, store=store, keys=settings.keys, external_ingester=True)
    ingestion = app.context.ingestion
    ingestion.start()
    hitlog = ingestion.hitlog
    requests = [b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n" % path.encode() for path in paths]
    config = Config(app, http=TrackingProtocol, ws="none", lifespan="off", log_config=None, access_log=False)
    config.load()
    state = ServerState()
    links = []
    for _ in range(connections):
        protocol = TrackingProtocol(config=config, server_state=state, app_state={})
        transport = _Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        links.append((protocol, transport))
    tune_gc()  # as the server does once it has started

    async def run(first: int, count: int) -> None:
        sent = first
        end = first + count
        while sent < end:
            for protocol, _ in links[: end - sent]:
                protocol.data_received(requests[sent])
                sent += 1
            await asyncio.sleep(0)  # the group write runs here, at the end of the loop's turn
        await asyncio.sleep(0)

    await run(0, warm)
    logged_before = hitlog.rows
    started = time.process_time()
    await run(warm, hits)
    cpu = time.process_time() - started
    answered = sum(transport.writes for _, transport in links)
    logged = hitlog.rows - logged_before
    ingestion.stop()  # writes what is queued and closes the hit log, as a server's shutdown does
    store.close()
    if answered != warm + hits or logged != hits or hitlog.failures:
        raise SetupError(f"{answered:,} of {warm + hits:,} hits answered, {logged:,} of {hits:,} logged")
    return {"hits": hits, "connections": connections, "cpu_us_per_hit": cpu / hits * 1e6, "logged": logged}


def mint(count: int) -> tuple[str, list[str]]:
    """A new key ring and ``count`` pixel paths (``/o/<token>``) on distinct messages, signed with it."""
    from mailbeacon.config import generate_keyring

    keys = generate_keyring().to_spec()
    return keys, [url.partition("8000")[2] for url in mailbeacon_urls(keys, "hit", count)]


def measure(hits: int, warm: int, connections: int, minted: Path | None = None) -> dict[str, Any]:
    """``minted``: a file of the key ring and the paths (what ``count_instructions`` passes its runs)."""
    import uvloop

    if minted is None:
        keys, paths = mint(warm + hits)
    else:
        keys, *paths = minted.read_text().splitlines()[: 1 + warm + hits]
    with tempfile.TemporaryDirectory(prefix="mb-hit-cost-") as tmp:
        return uvloop.run(drive(Path(tmp), keys, paths, hits, warm, connections))


def count_instructions(hits: int, warm: int, connections: int) -> dict[str, Any]:
    """Instructions per hit: two runs under callgrind, the difference over the difference in hits."""
    if shutil.which("valgrind") is None:
        raise SetupError("valgrind is not installed (apt-get install -y valgrind)")
    if hits <= _SMALL:
        raise SetupError(f"--instructions needs --hits above {_SMALL:,}")
    totals = []
    with tempfile.TemporaryDirectory(prefix="mb-hit-cost-cg-") as tmp:
        keys, paths = mint(warm + hits)  # outside callgrind: minting is not a hit's cost
        minted = Path(tmp) / "minted"
        minted.write_text("\n".join([keys, *paths]))
        runs = []
        for count in (_SMALL, hits):  # both at once: two cores, and each run counts only its own
            cmd = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out-{count}",
                sys.executable, __file__, "--hits", str(count), "--warm", str(warm),
                "--connections", str(connections), "--minted", str(minted), "--json",
            ]  # fmt: skip
            runs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for run in runs:
            _, err = run.communicate(timeout=3600)
            found = re.search(r"Collected : (\d+)", err)
            if run.returncode != 0 or found is None:
                raise SetupError(f"callgrind run failed: {err.strip()[-300:]}")
            totals.append(int(found.group(1)))
    return {
        "hits": hits,
        "connections": connections,
        "instructions_per_hit": (totals[1] - totals[0]) / (hits - _SMALL),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hits", type=int, default=100_000, help="timed hits (default 100,000)")
    parser.add_argument("--warm", type=int, default=5_000, help="hits before the timed ones (default 5,000)")
    parser.add_argument("--connections", type=int, default=64, help="requests per loop turn (default 64)")
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    parser.add_argument("--minted", type=Path, help=argparse.SUPPRESS)  # count_instructions' runs
    args = parser.parse_args()
    try:
        if args.instructions:
            result = count_instructions(args.hits, args.warm, args.connections)
        else:
            result = measure(args.hits, args.warm, args.connections, args.minted)
    except SetupError as exc:
        print(f"benchmarks/hit_cost.py: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.instructions:
        print(
            f"{result['instructions_per_hit']:,.0f} instructions a hit ({result['hits']:,} hits, callgrind)"
        )
    else:
        print(
            f"{result['cpu_us_per_hit']:.2f} µs of CPU a hit ({result['hits']:,} hits, "
            f"{result['connections']} per loop turn)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
