"""Server benchmark: pixel hits on distinct tokens, mailbeacon against nginx and pytracking2, in one run.

Run ``.venv/bin/python benchmarks/server.py`` (``make bench-server``); ``--json`` for machines.

What it does
------------
One after the other, on loopback only, with the same ``wrk`` settings for every server
(``wrk -t1 -c64 -d10s --latency`` by default) and a ~2 s warm-up run before each timed run:

1. nginx ``empty_gif`` (``/work/shared/bench/nginx-empty-gif.sh``, one worker): the ceiling;
2. pytracking2's Django ``OpenTrackingView`` under ``gunicorn -w 2`` (records nothing);
3. ``mailbeacon serve`` on SQLite with ``synchronous=normal``;
4. ``mailbeacon serve`` on SQLite with ``synchronous=full``;
5. ``mailbeacon serve`` on PostgreSQL, in a fresh database created for this run and dropped after.

Every request carries a distinct token: a Lua script walks a file of pre-minted paths
(mailbeacon's with ``Tracker.open_url``, pytracking2's with ``pytracking.get_open_tracking_url``,
each with its own message id). The warm-up walks a separate file, so the timed run never
repeats a token the server has seen. If a run needs more paths than were minted it wraps
around, and the report says so.

Every mailbeacon hit is in the hit log before its response is sent; the ingester process
moves it into the database. The script proves no hit was skipped:
``mailbeacon_hits_logged_total`` (``/metrics``) and, once the ingester caught up, the
``mb_events`` row count must both rise by the number of 200 responses ``wrk`` counted. A
request still in flight when ``wrk`` stops its clock may be logged without ``wrk`` counting
its response, so the logged count may exceed wrk's by at most the number of connections;
the server's own count of verified pixel hits says exactly how many arrived, and logged
must equal it.

Targets (issue 3): req/s at least 0.25x nginx and at least 8x pytracking2, p99 under 20 ms,
server RSS (summed over the server's process tree, sampled at the end of the timed run)
under 200 MB. The exit status is 0 even when a target fails: this is a report. It is
non-zero only when setup fails (a tool missing, a server not starting), with one line saying why.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "bench"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"

TOKENS_PER_SECOND = 120_000  # minted per second of run, for mailbeacon (and nginx, which ignores them)
PYTRACKING_TOKENS_PER_SECOND = 20_000  # pytracking2's view does a few thousand req/s
NGINX_FACTOR = 0.25
PYTRACKING_FACTOR = 8.0
P99_MS = 20.0
RSS_MB = 200.0

LUA = r"""
-- Walk a file of paths, one distinct path per request; report as one JSON line in done().
local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  n = 0
  i = 0
  wraps = 0
  local k = 0
  local nthreads = tonumber(args[2])
  for line in io.lines(args[1]) do
    -- each thread takes its own share of the lines, so no two threads send the same one
    if k % nthreads == id - 1 then
      n = n + 1
      requests[n] = wrk.format("GET", line)
    end
    k = k + 1
  end
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wraps = wraps + 1
  end
  return requests[i]
end

function done(summary, latency, requests)
  local used, minted, wrapped = 0, 0, 0
  for _, t in ipairs(threads) do
    used = used + t:get("i") + t:get("n") * t:get("wraps")
    minted = minted + t:get("n")
    wrapped = wrapped + t:get("wraps")
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "paths_used": %d, "paths_minted": %d, "wraps": %d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    used, minted, wrapped))
end
"""


class SetupError(Exception):
    """Something the benchmark needs is missing or did not start: exit non-zero with this line."""


@dataclass
class Row:
    name: str
    server: str
    requests: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    rss_mb: float = 0.0
    processes: int = 0
    paths_used: int = 0
    paths_minted: int = 0
    wraps: int = 0
    records: bool = False
    committed: int | None = None  # rise of mailbeacon_events_committed_total over the timed run
    db_rows: int | None = None  # rise of the mb_events row count over the timed run
    verified: int | None = None  # rise of the server's count of verified pixel hits
    batches: int | None = None  # group commits over the timed run
    commit_seconds: float | None = None  # time the server spent committing them
    ingest_lag_s: float | None = None  # after wrk stopped, until every hit was in the database
    wrk_ended: float = 0.0  # time.monotonic() when the timed wrk run returned
    server_cores: float = 0.0  # CPU the server's process tree used during the timed run, in cores
    wrk_cores: float = 0.0  # CPU wrk used
    other_cores: float = 0.0  # CPU everything else on the machine used: noise
    vs_nginx: float | None = None
    vs_pytracking: float | None = None
    verdicts: dict[str, bool] = field(default_factory=dict)


# -- processes, ports, HTTP ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    # http.client, not urllib: no proxy settings from the environment, loopback only.
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def wait_ready(
    port: int, path: str, expect: str | None, proc: subprocess.Popen[bytes] | None, log: Path
) -> None:
    deadline = time.monotonic() + 60
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SetupError(f"server exited with status {proc.returncode}: {tail(log)}")
        try:
            status, body = http_get(port, path, timeout=2)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200 and (expect is None or body.strip() == expect):
                return
            last = f"HTTP {status} {body[:80]!r}"
        time.sleep(0.1)
    raise SetupError(f"server on port {port} not ready after 60 s ({last}): {tail(log)}")


def tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1][:300] if lines else "(empty log)"


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def tree_rss_mb(root: int) -> tuple[float, int]:
    """Resident memory summed over the process tree (shared pages count once per process)."""
    total_kb, count = 0, 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kb += int(match.group(1))
            count += 1
    return total_kb / 1024, count


def start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        # A session of its own: the whole group (server and its workers) is stopped together.
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (a graceful stop flushes queued hits), SIGKILL what is left."""
    pids = process_tree(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=15)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in pids:  # a worker that left the group (none should)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


class CpuMeter:
    """CPU used during the timed run by the server's tree, by wrk, and by everything else (noise)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.started = time.monotonic()
        self.busy = machine_busy_ticks()
        self.server = tree_cpu_ticks(root)
        self.children = children_cpu_seconds()

    def stop(self) -> tuple[float, float, float]:
        elapsed = time.monotonic() - self.started
        tick = os.sysconf("SC_CLK_TCK")
        busy = (machine_busy_ticks() - self.busy) / tick
        server = (tree_cpu_ticks(self.root) - self.server) / tick
        wrk = children_cpu_seconds() - self.children
        return server / elapsed, wrk / elapsed, max(0.0, busy - server - wrk) / elapsed


def machine_busy_ticks() -> int:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle


def tree_cpu_ticks(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- tokens and wrk ----------------------------------------------------------------------------


def write_paths(path: Path, urls: Iterator[str]) -> int:
    count = 0
    with path.open("w") as out:
        for url in urls:
            out.write(url[url.index("/o/") :] + "\n")
            count += 1
    return count


def mailbeacon_urls(spec: str, prefix: str, count: int) -> Iterator[str]:
    from mailbeacon import KeyRing, Tracker

    tracker = Tracker("http://127.0.0.1:8000", keys=KeyRing.parse(spec))
    for i in range(count):
        yield tracker.open_url(message_id=f"bench-{prefix}-{i}", recipient=f"user{i}@example.com")


def pytracking_urls(prefix: str, count: int) -> Iterator[str]:
    import pytracking

    config = pytracking.Configuration(base_open_tracking_url="http://127.0.0.1:8000/o/")
    for i in range(count):
        metadata = {"message_id": f"bench-{prefix}-{i}", "recipient": f"user{i}@example.com"}
        yield pytracking.get_open_tracking_url(metadata, configuration=config)


def run_wrk(
    args: argparse.Namespace, port: int, script: Path, paths: Path, duration: float
) -> dict[str, Any]:
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}/",
        "--",
        str(paths),
        str(args.threads),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            result: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
            result["text"] = done.stdout
            return result
    raise SetupError(f"wrk failed (status {done.returncode}): {(done.stderr or done.stdout).strip()[:300]}")


# -- mailbeacon's own counters -----------------------------------------------------------------


def mailbeacon_counters(port: int) -> dict[str, float]:
    """Hit-log writes (hits, groups, seconds) and verified pixel hits, from /metrics."""
    status, text = http_get(port, "/metrics")
    if status != 200:
        raise SetupError(f"/metrics answered HTTP {status}")
    counters: dict[str, float] = {"verified": 0.0}
    for name, metric in (
        ("events_committed", "hits_logged"),
        ("commit_batches", "hitlog_writes"),
        ("commit_seconds", "hitlog_seconds"),
    ):
        match = re.search(rf"^mailbeacon_{metric}_total (\S+)$", text, re.MULTILINE)
        if match is None:
            raise SetupError(f"/metrics has no mailbeacon_{metric}_total")
        counters[name] = float(match.group(1))
    for labels, value in re.findall(
        r"^mailbeacon_tracking_requests_total\{([^}]*)\} (\S+)$", text, re.MULTILINE
    ):
        if 'outcome="verified"' in labels and 'detail="open"' in labels:
            counters["verified"] += float(value)
    return counters


def settle(port: int) -> dict[str, float]:
    """Counters once they stop moving (hits in flight when wrk stopped are still being answered)."""
    last = mailbeacon_counters(port)
    for _ in range(50):
        time.sleep(0.2)
        now = mailbeacon_counters(port)
        if now["events_committed"] == last["events_committed"] and now["verified"] == last["verified"]:
            return now
        last = now
    return last


def ingested(db: Database, expected: int, since: float) -> tuple[int, float]:
    """The row count once the ingester has caught up (or stopped moving), and how long that took."""
    count, last_change = db.count(), time.monotonic()
    while count < expected and time.monotonic() - last_change < 5:
        time.sleep(0.05)
        now = db.count()
        if now != count:
            count, last_change = now, time.monotonic()
    return count, max(0.0, time.monotonic() - since) if count >= expected else float("inf")


class Database:
    """Where a mailbeacon run keeps its events, and how to count them."""

    def __init__(self, url: str | None, sqlite_path: Path | None) -> None:
        self.url = url
        self.sqlite_path = sqlite_path

    def count(self) -> int:
        if self.sqlite_path is not None:
            with contextlib.closing(sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)) as conn:
                return int(conn.execute("SELECT count(*) FROM mb_events").fetchone()[0])
        import psycopg

        assert self.url is not None
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT count(*) FROM mb_events").fetchone()
            assert row is not None
            return int(row[0])


@contextlib.contextmanager
def postgres_database(base_url: str, suffix: str = "") -> Iterator[str]:
    """A fresh database for this run (``suffix`` tells several apart), dropped afterwards; yields its URL."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise SetupError("psycopg is not installed: pip install -e '.[bench]'") from None
    from sqlalchemy.engine import make_url

    name = f"mb_bench_{os.getpid()}{suffix}"
    try:
        admin = psycopg.connect(base_url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SetupError(
            f"PostgreSQL at {make_url(base_url).render_as_string()} unreachable: {first}"
        ) from None
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- the runs ----------------------------------------------------------------------------------


@dataclass
class Files:
    script: Path
    mb_warm: Path
    mb_timed: Path
    pt_warm: Path
    pt_timed: Path
    mb_minted: int
    pt_minted: int


def measure(
    args: argparse.Namespace,
    row: Row,
    port: int,
    root_pid: int,
    files: Files,
    warm: Path,
    timed: Path,
    db: Database | None = None,
) -> Row:
    warmed = run_wrk(args, port, files.script, warm, args.warmup)
    before = settle(port) if db is not None else {}
    if db is not None:
        # The warm-up's hits into the database first, else a lagging ingester's warm-up rows
        # were counted as the timed run's. The hit counter covers one worker (/metrics), so
        # with several the wait is for wrk's own count of answered hits.
        warm_ok = warmed["requests"] - warmed["status"]
        ingested(db, max(round(before["events_committed"]), warm_ok), time.monotonic())
    rows_before = db.count() if db is not None else 0
    cpu = CpuMeter(root_pid)
    result = run_wrk(args, port, files.script, timed, args.duration)
    ended = row.wrk_ended = time.monotonic()
    row.server_cores, row.wrk_cores, row.other_cores = cpu.stop()
    row.rss_mb, row.processes = tree_rss_mb(root_pid)  # at the end of the timed run, server still up
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout")}
    row.requests = result["requests"]
    row.ok = result["requests"] - result["status"]  # /o/ answers 200 or, counted in "status", an error
    row.errors = {k: v for k, v in errors.items() if v}
    row.rps = result["requests"] / (result["duration_us"] / 1e6)
    row.p50_ms = result["p50_us"] / 1000
    row.p99_ms = result["p99_us"] / 1000
    row.max_ms = result["max_us"] / 1000
    row.paths_used = result["paths_used"]
    row.paths_minted = result["paths_minted"]
    row.wraps = result["wraps"]
    if db is not None:
        after = settle(port)
        row.records = True
        row.committed = round(after["events_committed"] - before["events_committed"])
        row.verified = round(after["verified"] - before["verified"])
        row.batches = round(after["commit_batches"] - before["commit_batches"])
        row.commit_seconds = after["commit_seconds"] - before["commit_seconds"]
        row.db_rows, row.ingest_lag_s = ingested(db, rows_before + max(row.committed, row.ok), ended)
        row.db_rows -= rows_before
    return row


def run_nginx(args: argparse.Namespace, files: Files, work: Path) -> Row:
    port = free_port()
    helper = BENCH / "nginx-empty-gif.sh"
    env = {**os.environ, "TMPDIR": str(work)}
    started = subprocess.run(
        ["bash", str(helper), "start", str(port)], env=env, capture_output=True, text=True
    )
    if started.returncode != 0:
        raise SetupError(f"nginx did not start: {(started.stderr or started.stdout).strip()[:300]}")
    try:
        pid_file = work / f"nginx-empty-gif-{port}" / "nginx.pid"
        log = work / f"nginx-empty-gif-{port}" / "error.log"
        wait_ready(port, "/", None, None, log)
        master = int(pid_file.read_text().strip())
        row = Row("nginx empty_gif", f"nginx {nginx_version()}, 1 worker")
        return measure(args, row, port, master, files, files.mb_warm, files.mb_timed)
    finally:
        subprocess.run(["bash", str(helper), "stop", str(port)], env=env, capture_output=True, check=False)


def run_pytracking(args: argparse.Namespace, files: Files, work: Path) -> Row:
    gunicorn = shutil.which("gunicorn", path=str(BIN)) or shutil.which("gunicorn")
    if gunicorn is None:
        raise SetupError("gunicorn is not installed: pip install -e '.[bench]' (or make bench-server)")
    port = free_port()
    log = work / "gunicorn.log"
    env = {**os.environ, "PORT": str(port)}
    cmd = [
        gunicorn,
        "-w",
        "2",
        "-b",
        f"{HOST}:{port}",
        "--chdir",
        str(BENCH),
        "pytracking2_django:application",
    ]
    proc = start(cmd, env, BENCH, log)
    try:
        first = files.pt_warm.read_text().split("\n", 1)[0]
        wait_ready(port, first, None, proc, log)
        row = Row(
            "pytracking2 Django view", f"gunicorn {version('gunicorn')} -w 2, Django {version('django')}"
        )
        return measure(args, row, port, proc.pid, files, files.pt_warm, files.pt_timed)
    finally:
        stop(proc)


@dataclass
class Served:
    """A running ``mailbeacon serve``: where it listens, its process, its database and environment."""

    port: int
    proc: subprocess.Popen[bytes]
    db: Database
    env: dict[str, str]
    data: Path


@contextlib.contextmanager
def mailbeacon_server(
    work: Path,
    name: str,
    keys: str,
    *,
    workers: int = 1,
    synchronous: str = "full",
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """``mailbeacon serve`` on a free loopback port with its own data directory, stopped afterwards."""
    port = free_port()
    data = work / name.replace(" ", "-").replace(",", "").replace("=", "-")
    data.mkdir()
    log = data / "server.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MAILBEACON_")},
        "MAILBEACON_DATA_DIR": str(data),
        "MAILBEACON_KEYS": keys,
        "MAILBEACON_BASE_URL": f"http://{HOST}:{port}",
        "MAILBEACON_SQLITE_SYNCHRONOUS": synchronous,
        "MAILBEACON_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    if database_url:
        env["MAILBEACON_DATABASE_URL"] = database_url
    mailbeacon = shutil.which("mailbeacon", path=str(BIN))
    if mailbeacon is None:
        raise SetupError(f"no mailbeacon command in {BIN}: pip install -e '.[bench]'")
    cmd = [mailbeacon, "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    proc = start(cmd, env, data, log)
    try:
        wait_ready(port, "/healthz", "ok", proc, log)
        db = Database(database_url, None if database_url else data / "mailbeacon.db")
        yield Served(port, proc, db, env, data)
    finally:
        stop(proc)


def run_mailbeacon(
    args: argparse.Namespace,
    files: Files,
    work: Path,
    keys: str,
    name: str,
    server: str,
    *,
    synchronous: str = "full",
    database_url: str | None = None,
) -> Row:
    with mailbeacon_server(
        work, name, keys, workers=args.workers, synchronous=synchronous, database_url=database_url
    ) as served:
        row = Row(name, server)
        return measure(
            args, row, served.port, served.proc.pid, files, files.mb_warm, files.mb_timed, served.db
        )


def judge(rows: list[Row], connections: int, workers: int) -> None:
    nginx = next(row for row in rows if row.name.startswith("nginx"))
    pytracking = next(row for row in rows if row.name.startswith("pytracking2"))
    for row in rows:
        if not row.records:
            continue
        row.vs_nginx = row.rps / nginx.rps if nginx.rps else 0.0
        row.vs_pytracking = row.rps / pytracking.rps if pytracking.rps else 0.0
        assert row.committed is not None
        assert row.verified is not None
        assert row.db_rows is not None
        # /metrics is per worker process: with several, only the database count covers them all.
        counters_agree = workers > 1 or row.committed == row.verified == row.db_rows
        row.verdicts = {
            f">= {NGINX_FACTOR}x nginx": row.vs_nginx >= NGINX_FACTOR,
            f">= {PYTRACKING_FACTOR:g}x pytracking2": row.vs_pytracking >= PYTRACKING_FACTOR,
            f"p99 < {P99_MS:g} ms": row.p99_ms < P99_MS,
            f"RSS < {RSS_MB:g} MB": row.rss_mb < RSS_MB,
            # Every hit that reached the server was committed, and every 200 wrk counted was one of them.
            "no hit skipped": (counters_agree and 0 <= row.db_rows - row.ok <= connections),
        }


# -- report ------------------------------------------------------------------------------------


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def nginx_version() -> str:
    done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().rpartition("/")[2] or "?"


def wrk_version() -> str:
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    words = (done.stdout or done.stderr).split()
    return words[1] if len(words) > 1 else "?"


def postgres_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "wrk": wrk_version(),
        "mailbeacon": version("mailbeacon"),
        "uvicorn": version("uvicorn"),
        "pytracking2": version("pytracking2"),
    }


def mark(passed: bool | None) -> str:
    return "-" if passed is None else ("PASS" if passed else "FAIL")


def print_report(report: dict[str, Any]) -> None:
    env, cfg, rows = report["environment"], report["settings"], report["rows"]
    print(
        f"Python {env['python']} on {env['platform']}, {env['cpu_count']} CPUs; wrk {env['wrk']}, "
        f"mailbeacon {env['mailbeacon']} (uvicorn {env['uvicorn']}), pytracking2 {env['pytracking2']}"
    )
    print(
        f"wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration']}s --latency, "
        f"a distinct token per request, {cfg['warmup']} s warm-up before each run, "
        f"mailbeacon serve --workers {cfg['workers']}, loopback only\n"
    )
    header = (
        f"{'server':<26}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'RSS MB':>8}{'vs nginx':>10}{'vs pyt2':>9}"
        f"  {'>=0.25x':<8}{'>=8x':<6}{'p99<20':<8}{'RSS<200':<8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        verdicts = [mark(v) for v in row["verdicts"].values()] or ["-"] * 4
        vs_nginx = "1.00x" if row["name"].startswith("nginx") else ""
        vs_nginx = f"{row['vs_nginx']:.2f}x" if row["vs_nginx"] is not None else vs_nginx
        vs_pyt = "1.0x" if row["name"].startswith("pytracking2") else ""
        vs_pyt = f"{row['vs_pytracking']:.1f}x" if row["vs_pytracking"] is not None else vs_pyt
        print(
            f"{row['name']:<26}{row['rps']:>9,.0f}{row['p50_ms']:>8.2f}{row['p99_ms']:>8.2f}"
            f"{row['rss_mb']:>8.0f}{vs_nginx:>10}{vs_pyt:>9}"
            f"  {verdicts[0]:<8}{verdicts[1]:<6}{verdicts[2]:<8}{verdicts[3]:<8}"
        )

    print("\nno hit skipped: over each timed run, wrk's 200s against what the server counted")
    print(
        f"  {'server':<26}{'wrk 200s':>10}{'arrived':>10}{'logged':>11}{'db rows':>10}"
        f"{'writes':>9}{'rows/write':>12}{'writing':>9}{'db lag s':>10}  verdict"
    )
    for row in rows:
        if not row["records"]:
            continue
        extra = row["db_rows"] - row["ok"]
        note = f" (+{extra} in flight when wrk stopped)" if extra else ""
        per_commit = row["committed"] / row["batches"] if row["batches"] else 0.0
        print(
            f"  {row['name']:<26}{row['ok']:>10,}{row['verified']:>10,}{row['committed']:>11,}"
            f"{row['db_rows']:>10,}{row['batches']:>9,}{per_commit:>12.1f}"
            f"{row['commit_seconds'] / cfg['duration']:>9.0%}{row['ingest_lag_s']:>10.1f}"
            f"  {mark(row['verdicts']['no hit skipped'])}{note}"
        )
    print(
        "  arrived: the server's verified pixel hits; logged: mailbeacon_hits_logged_total, hits on\n"
        "  disk in the hit log before their response; db rows: new mb_events rows once the ingester\n"
        "  caught up. All three must agree, and exceed wrk's 200s by no more than the\n"
        f"  {cfg['connections']} requests that can be in flight when wrk stops. writing: share of the run\n"
        "  the server's loop spent appending (and syncing) the hit log; db lag: seconds after wrk\n"
        "  stopped until the last hit was in the database (the ingester runs in its own process)."
    )

    print("\nservers and tokens:")
    for row in rows:
        wrapped = "all distinct"
        if row["wraps"]:
            harmless = "" if row["records"] else " (harmless: it records nothing)"
            wrapped = f"WRAPPED {row['wraps']}x, tokens repeat{harmless}"
        errors = "".join(f", {v} {k} errors" for k, v in row["errors"].items())
        print(
            f"  {row['name']:<26}{row['server']}, {row['processes']} processes; "
            f"{row['paths_used']:,} of {row['paths_minted']:,} tokens used, {wrapped}{errors}; "
            f"CPU cores used: server {row['server_cores']:.2f}, wrk {row['wrk_cores']:.2f}, "
            f"other work {row['other_cores']:.2f}"
        )
    if any(row["other_cores"] > 0.25 for row in rows):
        print(
            '  note: other work on the machine used CPU during some runs ("other work" above); absolute\n'
            "  numbers are depressed and the ratios less certain. Run again when the machine is idle."
        )
    failed = report["failed"]
    total = sum(len(row["verdicts"]) for row in rows)
    print(f"\n{total - len(failed)} of {total} targets met")
    for name in failed:
        print(f"FAIL: {name}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    for tool, package in (("wrk", "wrk"), ("nginx", "nginx-light")):
        if shutil.which(tool) is None:
            raise SetupError(f"{tool} is not installed (apt-get install -y {package}, or make bench-server)")
    for needed in ("nginx-empty-gif.sh", "pytracking2_django.py"):
        if not (BENCH / needed).exists():
            raise SetupError(f"{BENCH / needed} is missing (the shared benchmark anchors)")
    try:
        import pytracking  # noqa: F401

        from mailbeacon.config import generate_keyring
    except ImportError as exc:
        raise SetupError(f"{exc}: pip install -e '.[bench]'") from None

    postgres_url = args.postgres_url or os.environ.get("MAILBEACON_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    keys = generate_keyring().to_spec()
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="mb-bench-server-") as tmp,
        postgres_database(postgres_url) as pg_url,
    ):
        work = Path(tmp)
        script = work / "paths.lua"
        script.write_text(LUA)
        mb_count = max(1000, int(args.duration * TOKENS_PER_SECOND))
        pt_count = max(1000, int(args.duration * PYTRACKING_TOKENS_PER_SECOND))
        warm = args.warmup / args.duration
        log_progress(
            args, f"minting {mb_count:,} mailbeacon and {pt_count:,} pytracking2 tokens (+ warm-up sets)"
        )
        files = Files(
            script=script,
            mb_warm=work / "mb-warm.txt",
            mb_timed=work / "mb-timed.txt",
            pt_warm=work / "pt-warm.txt",
            pt_timed=work / "pt-timed.txt",
            mb_minted=write_paths(work / "mb-timed.txt", mailbeacon_urls(keys, "t", mb_count)),
            pt_minted=write_paths(work / "pt-timed.txt", pytracking_urls("t", pt_count)),
        )
        write_paths(files.mb_warm, mailbeacon_urls(keys, "w", max(1000, int(mb_count * warm))))
        write_paths(files.pt_warm, pytracking_urls("w", max(1000, int(pt_count * warm))))

        log_progress(args, "nginx empty_gif")
        rows.append(run_nginx(args, files, work))
        log_progress(args, "pytracking2 Django OpenTrackingView under gunicorn")
        rows.append(run_pytracking(args, files, work))
        for sync in ("normal", "full"):
            log_progress(args, f"mailbeacon, SQLite synchronous={sync}")
            rows.append(
                run_mailbeacon(
                    args,
                    files,
                    work,
                    keys,
                    f"mailbeacon SQLite {sync}",
                    f"SQLite synchronous={sync}",
                    synchronous=sync,
                )
            )
        log_progress(args, "mailbeacon, PostgreSQL")
        rows.append(
            run_mailbeacon(
                args,
                files,
                work,
                keys,
                "mailbeacon PostgreSQL",
                f"PostgreSQL {postgres_version(pg_url)}",
                database_url=pg_url,
            )
        )
    judge(rows, args.connections, args.workers)
    failed = [f"{row.name}: {name}" for row in rows for name, ok in row.verdicts.items() if not ok]
    return {
        "environment": environment(),
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "workers": args.workers,
        },
        "targets": {
            "vs_nginx": NGINX_FACTOR,
            "vs_pytracking": PYTRACKING_FACTOR,
            "p99_ms": P99_MS,
            "rss_mb": RSS_MB,
        },
        "rows": [asdict(row) for row in rows],
        "failed": failed,
        "all_passed": not failed,
    }


def log_progress(args: argparse.Namespace, what: str) -> None:
    print(f"... {what}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per timed run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of warm-up before each run (default 2)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="mailbeacon serve --workers (default 1)")
    parser.add_argument(
        "--postgres-url", help=f"admin URL (default $MAILBEACON_TEST_POSTGRES_URL or {DEFAULT_POSTGRES})"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args()
    if args.duration < 1 or args.warmup < 1 or args.connections < 1 or args.threads < 1:
        parser.error("--duration, --warmup, --connections and --threads must be at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    try:
        report = run(args)
    except SetupError as exc:
        print(f"benchmarks/server.py: setup failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
