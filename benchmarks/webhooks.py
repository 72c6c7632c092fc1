"""Live delivery benchmark: hit -> SSE stream, hit -> webhook receiver, and tracking with webhooks on.

Run ``.venv/bin/python benchmarks/webhooks.py`` (``make bench-webhooks``); ``--database both``
for SQLite and PostgreSQL side by side, ``--json`` for machines.

What it does, per database, on loopback only (issue 5's numbers)
-----------------------------------------------------------------
Server A, no webhook endpoints:

1. **hit -> SSE.** A client process opens ``--streams`` (500) ``GET /api/v1/stream``
   connections (API key). ``--firehose`` (10) of them are unfiltered and get every event of
   the account; the others follow one message each (``?message=``), ``--streams-per-message``
   (10) per message, so each of those gets every event of its message. Then this process
   sends pixel hits at a steady ``--rate`` (200/s) for ``--seconds`` (15), a distinct
   recipient per hit. Latency: from the moment a hit's response arrived here to the moment
   each stream that should get the event received it. Every stream must get exactly the
   events it should: none missed, none twice.
2. **tracking throughput, no endpoints**: ``wrk`` as in ``benchmarks/server.py``.

Server B, ``--endpoints`` (10) endpoints to local receivers (``MAILBEACON_WEBHOOK_ALLOW_PRIVATE``),
created and then left alone for 6 s so the ingester's endpoint cache (5 s) has them:

3. **hit -> webhook.** The same steady hits. Latency: hit response to the receiver's arrival
   of the POST. Every event must reach every endpoint exactly once (by ``webhook-id``), and
   the signatures are checked with ``mailbeacon.webhooks.verify``.
4. **tracking throughput, 10 endpoints**: the same ``wrk`` run; then the time until the
   receivers have every delivery (drain).

The receivers (one process, a socket per endpoint, answering 200 before doing anything else)
and the stream clients run in processes of their own; their CPU is reported.
The exit status is 0 even when a target is missed: this is a report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import webhook_peers
from server import (
    BIN,
    DEFAULT_POSTGRES,
    HOST,
    LUA,
    TOKENS_PER_SECOND,
    CpuMeter,
    Files,
    Row,
    Served,
    SetupError,
    environment,
    free_port,
    mailbeacon_server,
    mailbeacon_urls,
    measure,
    postgres_database,
    postgres_version,
    tree_cpu_ticks,
    write_paths,
)

SSE_P99_MS = 100.0
WEBHOOK_P99_MS = 1000.0
RATIO = 0.8
CACHE_WAIT_S = 6.0  # the ingester refreshes its endpoint cache every 5 s (store/webhooks.py)


# -- the load generator: steady pixel hits -----------------------------------------------------


Hit = tuple[str, str, str]  # path, recipient, message id


def hit_paths(keys: str, prefix: str, count: int, messages: int) -> list[Hit]:
    """A path per hit: a distinct recipient each, messages taken in turn."""
    from mailbeacon import KeyRing, Tracker

    tracker = Tracker(f"http://{HOST}:8000", keys=KeyRing.parse(keys))
    paths = []
    for i in range(count):
        recipient, message = f"hit-{prefix}-{i}@example.com", message_name(prefix, i % messages)
        url = tracker.open_url(message_id=message, recipient=recipient)
        paths.append((url[url.index("/o/") :], recipient, message))
    return paths


def message_name(prefix: str, index: int) -> str:
    return f"wh-{prefix}-{index}"


async def _drive(port: int, paths: list[Hit], rate: float, connections: int) -> dict[str, Any]:
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(HOST, port))
    answered: dict[str, float] = {}
    failed: list[str] = []
    response_ms: list[float] = []

    async def one(path: str, recipient: str) -> None:
        reader, writer = await pool.get()
        sent = time.monotonic()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        when = time.monotonic()
        pool.put_nowait((reader, writer))
        if head.startswith(b"HTTP/1.1 200"):
            answered[recipient] = when
            response_ms.append((when - sent) * 1000)
        else:
            failed.append(head.split(b"\r\n", 1)[0].decode())

    started = time.monotonic() + 0.05
    tasks, behind = [], 0.0
    for i, (path, recipient, _) in enumerate(paths):
        due = started + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        behind = max(behind, -delay)
        tasks.append(asyncio.create_task(one(path, recipient)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {
        "answered": answered,
        "failed": failed,
        "sent_rate": len(paths) / max(1e-9, time.monotonic() - started),
        "behind_ms": behind * 1000,  # how late the most late hit left (load generator falling behind)
        "response": percentiles(response_ms),
    }


def drive(port: int, paths: list[Hit], rate: float) -> dict[str, Any]:
    return asyncio.run(_drive(port, paths, rate, connections=16))


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": at(0.50), "p99": at(0.99), "max": ordered[-1]}


# -- the peers' processes ----------------------------------------------------------------------


class Peer:
    """A spawned process (receivers or stream clients) behind a pipe."""

    def __init__(self, target: Any, *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()
        self.expect("ready", 60)

    def ask(self, *command: Any, timeout: float = 120) -> Any:
        self.conn.send(command)
        if not self.conn.poll(timeout):
            raise SetupError(f"{self.process.name} did not answer {command[0]!r} within {timeout:g} s")
        return self.conn.recv()

    def expect(self, what: str, timeout: float) -> None:
        if not self.conn.poll(timeout) or self.conn.recv() != what:
            raise SetupError(f"{self.process.name} did not start (exit code {self.process.exitcode})")

    def cpu_ticks(self) -> int:
        assert self.process.pid is not None
        return tree_cpu_ticks(self.process.pid)

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.conn.send(("stop",))
            self.conn.poll(10)
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


@contextlib.contextmanager
def peer(target: Any, *args: Any) -> Iterator[Peer]:
    started = Peer(target, *args)
    try:
        yield started
    finally:
        started.close()


def cores(ticks: int, seconds: float) -> float:
    return ticks / os.sysconf("SC_CLK_TCK") / max(1e-9, seconds)


# -- the server's API --------------------------------------------------------------------------


def api_key(served: Served) -> str:
    done = subprocess.run(
        [str(BIN / "mailbeacon"), "apikey", "create", "default", "--key-name", "bench"],
        env=served.env,
        cwd=served.data,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SetupError(f"mailbeacon apikey create failed: {done.stderr.strip()[-300:]}")
    return done.stdout.strip().splitlines()[0]


def create_endpoint(served: Served, key: str, url: str) -> str:
    conn = http.client.HTTPConnection(HOST, served.port, timeout=10)
    try:
        body = json.dumps({"url": url, "types": [], "description": "benchmarks/webhooks.py"})
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        conn.request("POST", "/api/v1/webhooks", body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read().decode()
    finally:
        conn.close()
    if response.status != 201:
        raise SetupError(f"POST /api/v1/webhooks answered HTTP {response.status}: {answer[:300]}")
    return str(json.loads(answer)["secret"])


# -- the phases --------------------------------------------------------------------------------


def stream_plan(args: argparse.Namespace, prefix: str) -> list[str | None]:
    """The ``?message=`` of each stream: None for the firehose ones."""
    filtered = args.streams - args.firehose
    return [None] * args.firehose + [
        message_name(prefix, i // args.streams_per_message) for i in range(filtered)
    ]


def messages_for(args: argparse.Namespace) -> int:
    filtered = args.streams - args.firehose
    return max(1, -(-filtered // args.streams_per_message))


def load_facts(paths: list[Hit], load: dict[str, Any]) -> dict[str, Any]:
    """What both steady-load phases report about the hits they sent."""
    return {
        "hits": len(paths),
        "answered": len(load["answered"]),
        "failed": len(load["failed"]),
        "sent_rate": load["sent_rate"],
        "behind_ms": load["behind_ms"],
        "hit_response": load["response"],
    }


def phase_streams(args: argparse.Namespace, served: Served, key: str, keys: str) -> dict[str, Any]:
    prefix = "s"
    paths = hit_paths(keys, prefix, int(args.rate * args.seconds), messages_for(args))
    plan = stream_plan(args, prefix)
    with peer(webhook_peers.run_streams, served.port, key) as streams:
        opened = streams.ask("open", plan)
        if opened["errors"]:
            raise SetupError(f"streams did not open: {opened['errors']}")
        ticks, cpu, started = streams.cpu_ticks(), CpuMeter(served.proc.pid), time.monotonic()
        load = drive(served.port, paths, args.rate)
        expected = expected_per_stream(plan, paths, load["answered"])
        deadline = time.monotonic() + 10
        while True:  # the last hits' events are still on their way
            got = streams.ask("collect")
            if all(set(g["got"]) >= want for g, want in zip(got, expected, strict=True)):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        client_cores = cores(streams.cpu_ticks() - ticks, elapsed)
    server_cores, _, other_cores = cpu.stop()
    latencies = [
        (when - load["answered"][recipient]) * 1000
        for g in got
        for recipient, when in g["got"].items()
        if recipient in load["answered"]
    ]
    missed = sum(len(want - set(g["got"])) for g, want in zip(got, expected, strict=True))
    return {
        **load_facts(paths, load),
        "streams": len(plan),
        "firehose": args.firehose,
        "messages": messages_for(args),
        "open_s": opened["seconds"],
        "expected": sum(len(want) for want in expected),
        "latency": percentiles(latencies),
        "missed": missed,
        "duplicates": sum(g["duplicates"] for g in got),
        "broken": [g["error"] for g in got if g["error"]][:5],
        "client_cores": client_cores,
        "server_cores": server_cores,
        "other_cores": other_cores,
    }


def expected_per_stream(
    plan: list[str | None], paths: list[Hit], answered: dict[str, float]
) -> list[set[str]]:
    """The recipients each stream must get: every answered hit, or those of its message."""
    by_message: dict[str, set[str]] = {}
    for _, recipient, message in paths:
        if recipient in answered:
            by_message.setdefault(message, set()).add(recipient)
    everything = set(answered)
    return [everything if message is None else by_message.get(message, set()) for message in plan]


def phase_webhooks(args: argparse.Namespace, served: Served, receivers: Peer, keys: str) -> dict[str, Any]:
    count = int(args.rate * args.seconds)
    # A message each: hits on one message would make the ingester's reviser reread a growing message.
    paths = hit_paths(keys, "w", count, count)
    receivers.ask("reset")
    ticks, cpu, started = receivers.cpu_ticks(), CpuMeter(served.proc.pid), time.monotonic()
    load = drive(served.port, paths, args.rate)
    want = len(load["answered"]) * args.endpoints
    snap = wait_for_deliveries(receivers, want, args.drain_timeout)
    elapsed = time.monotonic() - started
    receiver_cores = cores(receivers.cpu_ticks() - ticks, elapsed)
    server_cores, _, other_cores = cpu.stop()
    snap = receivers.ask("snapshot", True)
    latencies = [
        (when - load["answered"][recipient]) * 1000
        for _, recipient, when in snap["arrivals"]
        if recipient in load["answered"]
    ]
    reached: list[set[str]] = [set() for _ in range(args.endpoints)]
    for endpoint, recipient, _ in snap["arrivals"]:
        reached[endpoint].add(recipient)
    answered = set(load["answered"])
    return {
        **load_facts(paths, load),
        "latency": percentiles(latencies),
        **delivery_checks(snap, len(answered), args.endpoints),
        "missed": sum(len(answered - got) for got in reached),
        "receiver_cores": receiver_cores,
        "receiver_us": snap["handle_s"] / max(1, sum(snap["received"])) * 1e6,
        "server_cores": server_cores,
        "other_cores": other_cores,
    }


def delivery_checks(snap: dict[str, Any], events: int, endpoints: int) -> dict[str, Any]:
    received = sum(snap["received"])
    exactly_once = all(u == events for u in snap["unique"]) and not any(snap["duplicates"])
    return {
        "deliveries": received,
        "expected_deliveries": events * endpoints,
        "duplicates": sum(snap["duplicates"]),
        "exactly_once": exactly_once and snap["bad_count"] == 0,
        "verified": snap["verified"],
        "bad_signatures": snap["bad_count"],
        "bad_examples": snap["bad"],
    }


def wait_for_deliveries(receivers: Peer, want: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        snap: dict[str, Any] = receivers.ask("snapshot", False)
        if sum(snap["unique"]) >= want or time.monotonic() > deadline:
            return snap
        time.sleep(0.2)


def phase_throughput(
    args: argparse.Namespace, served: Served, files: Files, name: str, receivers: Peer | None
) -> dict[str, Any]:
    if receivers is not None:
        receivers.ask("reset")
    rows_before = served.db.count()
    ticks = receivers.cpu_ticks() if receivers is not None else 0
    row = measure(
        args, Row(name, name), served.port, served.proc.pid, files, files.mb_warm, files.mb_timed, served.db
    )
    result: dict[str, Any] = {"row": asdict(row)}
    if receivers is None:
        return result
    events = served.db.count() - rows_before  # warm-up and timed run: all have deliveries
    snap = wait_for_deliveries(receivers, events * args.endpoints, args.drain_timeout)
    drained = sum(snap["unique"]) >= events * args.endpoints
    elapsed = time.monotonic() - row.wrk_ended + args.duration + args.warmup
    result.update(delivery_checks(snap, events, args.endpoints))
    result.update(
        {
            "events": events,
            "drained": drained,
            # after wrk stopped, until the last delivery arrived (or the timeout)
            "drain_s": (snap["last"] - row.wrk_ended) if drained else float("inf"),
            "delivery_rate": sum(snap["unique"]) / max(1e-9, snap["last"] - (row.wrk_ended - args.duration)),
            "receiver_cores": cores(receivers.cpu_ticks() - ticks, elapsed),
            "receiver_us": snap["handle_s"] / max(1, sum(snap["received"])) * 1e6,
        }
    )
    return result


# -- one database ------------------------------------------------------------------------------


def run_database(
    args: argparse.Namespace, kind: str, work: Path, keys: str, files: Files, pg_url: str | None
) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        url_a = url_b = None
        if kind == "postgres":
            assert pg_url is not None
            url_a = stack.enter_context(postgres_database(pg_url, "_a"))
            url_b = stack.enter_context(postgres_database(pg_url, "_b"))
        extra = {"MAILBEACON_WEBHOOK_ALLOW_PRIVATE": "true"}
        result: dict[str, Any] = {"database": database_label(kind, pg_url)}
        with mailbeacon_server(work, f"{kind}-a", keys, database_url=url_a, extra_env=extra) as served:
            key = api_key(served)
            log_progress(f"{kind}: hit -> SSE, {args.streams} streams, {args.rate:g} hits/s")
            result["streams"] = phase_streams(args, served, key, keys)
            log_progress(f"{kind}: tracking throughput, no endpoints")
            result["plain"] = phase_throughput(args, served, files, "no endpoints", None)
        with mailbeacon_server(work, f"{kind}-b", keys, database_url=url_b, extra_env=extra) as served:
            key = api_key(served)
            ports = [free_port() for _ in range(args.endpoints)]
            secrets = [
                create_endpoint(served, key, f"http://{HOST}:{p}/hook/{i}") for i, p in enumerate(ports)
            ]
            with peer(webhook_peers.run_receivers, ports, secrets, args.verify_every) as receivers:
                time.sleep(CACHE_WAIT_S)
                log_progress(f"{kind}: hit -> webhook, {args.endpoints} endpoints, {args.rate:g} hits/s")
                result["webhooks"] = phase_webhooks(args, served, receivers, keys)
                log_progress(f"{kind}: tracking throughput, {args.endpoints} endpoints")
                result["hooked"] = phase_throughput(
                    args, served, files, f"{args.endpoints} endpoints", receivers
                )
    return result


def database_label(kind: str, pg_url: str | None) -> str:
    if kind == "postgres":
        assert pg_url is not None
        return f"PostgreSQL {postgres_version(pg_url)}"
    return "SQLite (synchronous=full)"


# -- verdicts and report -----------------------------------------------------------------------


def judge(result: dict[str, Any], args: argparse.Namespace) -> dict[str, bool]:
    streams, hooks = result["streams"], result["webhooks"]
    plain, hooked = result["plain"]["row"], result["hooked"]["row"]
    result["ratio"] = hooked["rps"] / plain["rps"] if plain["rps"] else 0.0
    verdicts = {
        "sse p99": streams["latency"]["p99"] < SSE_P99_MS,
        "sse complete": streams["missed"] == 0 and streams["duplicates"] == 0 and not streams["broken"],
        "webhook p99": hooks["latency"]["p99"] < WEBHOOK_P99_MS,
        "webhook once": hooks["exactly_once"] and hooks["missed"] == 0,
        "ratio": result["ratio"] >= RATIO,
        "drained": result["hooked"]["drained"] and result["hooked"]["exactly_once"],
        "no hit skipped": all(
            r["db_rows"] is not None and 0 <= r["db_rows"] - r["ok"] <= args.connections
            for r in (plain, hooked)
        ),
    }
    result["verdicts"] = verdicts
    return verdicts


def mark(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def ms3(stats: dict[str, float]) -> str:
    return f"{stats['p50']:.0f} / {stats['p99']:.0f} / {stats['max']:.0f}"


def print_report(report: dict[str, Any]) -> None:
    env, cfg, results = report["environment"], report["settings"], report["results"]
    print(
        f"Python {env['python']} on {env['platform']}, {env['cpu_count']} CPUs; wrk {env['wrk']}, "
        f"mailbeacon {env['mailbeacon']} (uvicorn {env['uvicorn']}), loopback only"
    )
    print(
        f"steady load: {cfg['rate']:g} pixel hits/s for {cfg['seconds']} s, a distinct recipient each; "
        f"{cfg['streams']} SSE streams ({cfg['firehose']} unfiltered, the rest ?message= "
        f"with {cfg['streams_per_message']} per message); {cfg['endpoints']} webhook endpoints\n"
        f"throughput: wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration']}s, "
        f"{cfg['warmup']} s warm-up, distinct tokens (benchmarks/server.py)\n"
    )
    width = 30
    header = f"{'':<44}{'target':<12}" + "".join(f"{r['database'][:width]:<{width}}" for r in results)
    print(header)
    print("-" * len(header))

    def line(label: str, target: str, cells: list[str]) -> None:
        print(f"{label:<44}{target:<12}" + "".join(f"{c:<{width}}" for c in cells))

    def cells(fn: Any, verdict: str | None = None) -> list[str]:
        return [fn(r) + (f"  {mark(r['verdicts'][verdict])}" if verdict else "") for r in results]

    line(
        f"hit -> SSE p50/p99/max ms ({cfg['streams']} streams)",
        f"p99 < {SSE_P99_MS:g}",
        cells(lambda r: ms3(r["streams"]["latency"]), "sse p99"),
    )
    line(
        "  every stream got its events, once",
        "all",
        cells(
            lambda r: (
                f"{r['streams']['latency']['n']:,} of {r['streams']['expected']:,}, "
                f"{r['streams']['missed']} missed, {r['streams']['duplicates']} dup"
            ),
            "sse complete",
        ),
    )
    line(
        f"hit -> webhook p50/p99/max ms ({cfg['endpoints']} endp.)",
        f"p99 < {WEBHOOK_P99_MS:g}",
        cells(lambda r: ms3(r["webhooks"]["latency"]), "webhook p99"),
    )
    line(
        "  every event at every endpoint once",
        "all",
        cells(
            lambda r: (
                f"{r['webhooks']['deliveries']:,} of {r['webhooks']['expected_deliveries']:,}, "
                f"{r['webhooks']['duplicates']} dup, {r['webhooks']['bad_signatures']} bad"
            ),
            "webhook once",
        ),
    )
    line("tracking req/s, no endpoints", "", cells(lambda r: f"{r['plain']['row']['rps']:,.0f}"))
    line(
        f"tracking req/s, {cfg['endpoints']} endpoints",
        "",
        cells(lambda r: f"{r['hooked']['row']['rps']:,.0f}"),
    )
    line("  ratio", f">= {RATIO:g}x", cells(lambda r: f"{r['ratio']:.2f}x", "ratio"))
    line(
        "  deliveries drained after wrk stopped",
        "all, once",
        cells(
            lambda r: f"{r['hooked']['deliveries']:,} in {r['hooked']['drain_s']:.1f} s",
            "drained",
        ),
    )
    line(
        "  no hit skipped (wrk 200s = db rows)",
        "all",
        cells(
            lambda r: (
                f"{r['plain']['row']['ok']:,}={r['plain']['row']['db_rows']:,} / "
                f"{r['hooked']['row']['ok']:,}={r['hooked']['row']['db_rows']:,}"
            ),
            "no hit skipped",
        ),
    )

    print("\nwhat limits these numbers:")
    for r in results:
        s, w, h = r["streams"], r["webhooks"], r["hooked"]
        print(f"  {r['database']}:")
        print(
            f"    steady hits: sent {s['sent_rate']:.0f}/s and {w['sent_rate']:.0f}/s "
            f"(at most {max(s['behind_ms'], w['behind_ms']):.0f} ms behind schedule), hit response "
            f"p99 {s['hit_response']['p99']:.1f} / {w['hit_response']['p99']:.1f} ms, "
            f"{s['failed'] + w['failed']} not 200"
        )
        print(
            f"    SSE: {s['streams']} streams opened in {s['open_s']:.1f} s; CPU cores: server "
            f"{s['server_cores']:.2f}, stream clients {s['client_cores']:.2f}, other {s['other_cores']:.2f}"
        )
        print(
            f"    webhooks: CPU cores: server {w['server_cores']:.2f}, receivers {w['receiver_cores']:.2f} "
            f"({w['receiver_us']:.0f} µs a request), other {w['other_cores']:.2f}; "
            f"{w['verified']:,} signatures verified"
        )
        print(
            f"    throughput with endpoints: {h['events']:,} events -> {h['deliveries']:,} deliveries, "
            f"{h['delivery_rate']:.0f}/s from the start of the timed run; receivers "
            f"{h['receiver_cores']:.2f} cores ({h['receiver_us']:.0f} µs a request); CPU cores during wrk: "
            f"server {h['row']['server_cores']:.2f} (vs {r['plain']['row']['server_cores']:.2f} "
            f"without), wrk {h['row']['wrk_cores']:.2f}, other {h['row']['other_cores']:.2f}"
        )
    failed = report["failed"]
    total = sum(len(r["verdicts"]) for r in results)
    print(f"\n{total - len(failed)} of {total} targets met")
    for name in failed:
        print(f"MISS: {name}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mailbeacon.config import generate_keyring

    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    pg_url = args.postgres_url or os.environ.get("MAILBEACON_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    keys = generate_keyring().to_spec()
    results = []
    with tempfile.TemporaryDirectory(prefix="mb-bench-webhooks-") as tmp:
        work = Path(tmp)
        script = work / "paths.lua"
        script.write_text(LUA)
        count = max(1000, int(args.duration * TOKENS_PER_SECOND))
        log_progress(f"minting {count:,} tokens for wrk (+ a warm-up set)")
        files = Files(
            script=script,
            mb_warm=work / "warm.txt",
            mb_timed=work / "timed.txt",
            pt_warm=work / "warm.txt",  # no pytracking2 rows here
            pt_timed=work / "timed.txt",
            mb_minted=write_paths(work / "timed.txt", mailbeacon_urls(keys, "t", count)),
            pt_minted=0,
        )
        write_paths(
            files.mb_warm, mailbeacon_urls(keys, "w", max(1000, count * args.warmup // args.duration))
        )
        for kind in kinds:
            results.append(
                run_database(args, kind, work, keys, files, pg_url if kind == "postgres" else None)
            )
    failed = [f"{r['database']}: {name}" for r in results for name, ok in judge(r, args).items() if not ok]
    return {
        "environment": environment(),
        "settings": {
            k: getattr(args, k)
            for k in (
                "rate",
                "seconds",
                "streams",
                "firehose",
                "streams_per_message",
                "endpoints",
                "duration",
                "warmup",
                "connections",
                "threads",
                "verify_every",
            )
        },
        "targets": {"sse_p99_ms": SSE_P99_MS, "webhook_p99_ms": WEBHOOK_P99_MS, "ratio": RATIO},
        "results": results,
        "failed": failed,
        "all_passed": not failed,
    }


def log_progress(what: str) -> None:
    print(f"... {what}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    add = parser.add_argument
    add("--database", choices=("sqlite", "postgres", "both"), default="sqlite", help="(default sqlite)")
    add("--rate", type=float, default=200.0, help="steady pixel hits per second (default 200)")
    add("--seconds", type=int, default=15, help="seconds of steady hits per latency phase (default 15)")
    add("--streams", type=int, default=500, help="open SSE streams (default 500)")
    add("--firehose", type=int, default=10, help="of them unfiltered: every event (default 10)")
    add("--streams-per-message", type=int, default=10, help="filtered streams per message (default 10)")
    add("--endpoints", type=int, default=10, help="webhook endpoints (default 10)")
    add("--verify-every", type=int, default=1, help="receivers verify every Nth signature (default 1: all)")
    add("--drain-timeout", type=float, default=60.0, help="seconds to wait for deliveries (default 60)")
    add("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    add("--warmup", type=int, default=2, help="seconds of wrk warm-up (default 2)")
    add("--connections", type=int, default=64, help="wrk connections (default 64)")
    add("--threads", type=int, default=1, help="wrk threads (default 1)")
    add("--postgres-url", help=f"admin URL (default $MAILBEACON_TEST_POSTGRES_URL or {DEFAULT_POSTGRES})")
    add("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args()
    args.workers = 1  # measure() reads it; a single server process, so /metrics covers all of it
    if not 0 <= args.firehose <= args.streams or args.streams_per_message < 1 or args.endpoints < 1:
        parser.error("need 0 <= --firehose <= --streams, --streams-per-message >= 1, --endpoints >= 1")
    try:
        report = run(args)
    except SetupError as exc:
        print(f"benchmarks/webhooks.py: setup failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
