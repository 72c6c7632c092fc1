"""A hit that got its answer survives ``kill -9``; a graceful stop commits what is queued."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from mailbeacon.store.hitlog import BATCH, MAGIC

from .harness import BROWSER, Server


def _hammer(server: Server, urls: list[str], answered: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=5, headers={"User-Agent": BROWSER}) as client:
        for url in urls:
            if stop.is_set():
                return
            try:
                if client.get(url).status_code == 200:
                    answered.append(url)
            except httpx.HTTPError:
                return  # the server died under us: this hit got no answer, so it may be lost


def _committed(server: Server, key: str, prefix: str) -> set[str]:
    found: set[str] = set()
    client = server.client(key)
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/messages", params=params).json()
        found |= {m["id"] for m in body["data"] if m["id"].startswith(prefix) and m["status"] == "opened"}
        cursor = body["next_cursor"]
        if not cursor:
            return found


def test_kill_9_under_load_loses_no_answered_hit(fresh_server: Server) -> None:
    server = fresh_server.start()
    tracker = server.tracker()
    urls = [[tracker.open_url(message_id=f"k9-{w}-{i}") for i in range(4000)] for w in range(8)]
    answered: list[str] = []
    stop = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(_hammer, server, chunk, answered, stop) for chunk in urls]
        while len(answered) < 1500:
            threading.Event().wait(0.05)
        server.stop(signal.SIGKILL)  # no shutdown hook runs: only what was committed survives
        stop.set()
        for job in jobs:
            job.result()
    server.start()
    key = server.new_account("default")
    ids = set(answered)
    committed = _committed(server, key, "k9-")
    minted = {tracker.decode(url).message_id: url for url in ids}
    assert len(minted) >= 1500
    missing = set(minted) - committed
    assert missing == set(), f"{len(missing)} answered hits were lost"


def test_graceful_stop_keeps_every_answered_hit(fresh_server: Server) -> None:
    server = fresh_server.start()
    tracker = server.tracker()
    urls = [tracker.open_url(message_id=f"term-{i}") for i in range(300)]
    with httpx.Client(timeout=5, headers={"User-Agent": BROWSER}) as client:
        assert all(client.get(url).status_code == 200 for url in urls)
    server.stop(signal.SIGTERM)
    assert server.process is not None
    assert server.process.returncode is not None
    server.start()
    key = server.new_account("default")
    assert len(_committed(server, key, "term-")) == 300


def test_two_workers_record_every_answered_hit_and_read_each_others(fresh_server: Server) -> None:
    # `serve --workers 2`: two HTTP processes with a hit log each, one ingester for both.
    fresh_server.serve_args = ("--workers", "2")
    server = fresh_server.start()
    key = server.new_account("default")
    tracker = server.tracker()
    urls = [[tracker.open_url(message_id=f"w2-{w}-{i}") for i in range(120)] for w in range(8)]
    answered: list[str] = []
    with ThreadPoolExecutor(8) as pool:  # eight connections: the kernel hands them to both workers
        for job in [pool.submit(_hammer, server, chunk, answered, threading.Event()) for chunk in urls]:
            job.result()
    assert len(answered) == 960
    # Read-your-hit across workers: a read waits for every hit log in the directory, so a
    # worker answering the API sees the hits its sibling answered.
    assert len(_committed(server, key, "w2-")) == 960
    # Each worker appends to a file of its own (named by its pid); both took some of the
    # eight connections (seen here: an even split).
    # (A file is zero-filled ahead of its writer: the first frame, not the size, shows it wrote.)
    firsts = [path.read_bytes()[len(MAGIC)] for path in (server.data_dir / "hits").glob("*.hits")]
    assert len(firsts) == 2, firsts
    assert firsts == [BATCH, BATCH], firsts
    server.stop(signal.SIGTERM)
    assert server.process is not None
    assert server.process.returncode is not None


def test_sigterm_with_open_streams_exits_promptly_and_keeps_every_answered_hit(fresh_server: Server) -> None:
    from .test_stream import Listener

    server = fresh_server.start()
    key = server.new_account("default")
    tracker = server.tracker()
    streams = [Listener(f"{server.base}/api/v1/stream", {"Authorization": f"Bearer {key}"}) for _ in range(3)]
    urls = [tracker.open_url(message_id=f"sse-term-{i}") for i in range(200)]
    with httpx.Client(timeout=5, headers={"User-Agent": BROWSER}) as client:
        assert all(client.get(url).status_code == 200 for url in urls)
    assert server.process is not None
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)  # the main process, as a service manager does
    server.process.wait(20)
    took = time.monotonic() - started
    assert took < 3, f"shutdown with open streams took {took:.1f} s"
    for stream in streams:
        stream.ended.wait(5)
        assert stream.ended.is_set()  # the server ended the response; the client did not hang up
    server.start()
    assert len(_committed(server, key, "sse-term-")) == 200
