"""The other ends of ``benchmarks/webhooks.py``: webhook receivers and SSE stream clients.

Each runs in a process of its own (``multiprocessing``, spawned), so its CPU is
measured apart from the server's and the load generator's, and answers
commands on a pipe: ``("snapshot", keep)`` / ``("reset",)`` / ``("stop",)``
for the receivers, ``("open", plan)`` / ``("collect",)`` / ``("stop",)`` for
the streams. Arrival times are ``time.monotonic()``: CLOCK_MONOTONIC is one
clock for every process on the machine, so they compare with the times the
load generator took when each hit's response arrived.

Hits are told apart by their recipient (``hit<n>@example.com``), which the
webhook body and the stream event both carry as ``data.recipient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.0.1"
_OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


# -- webhook receivers -------------------------------------------------------------------------


class Receivers:
    """What every receiver got: webhook-ids per endpoint, arrival times, signature checks."""

    def __init__(self, secrets: list[str], verify_every: int) -> None:
        from mailbeacon.webhooks import verify

        self._verify = verify
        self.secrets = secrets
        self.verify_every = verify_every
        self.reset()

    def reset(self) -> None:
        self.ids: list[Counter[str]] = [Counter() for _ in self.secrets]
        self.count = [0 for _ in self.secrets]
        self.arrivals: list[tuple[int, str, float]] = []  # endpoint, recipient, when
        self.verified = 0
        self.bad: list[str] = []
        self.handle_s = 0.0  # time spent parsing, checking and recording, summed over requests
        self.last = 0.0

    def arrived(self, endpoint: int, headers: dict[str, str], body: bytes, when: float) -> None:
        msg_id = headers.get("webhook-id", "")
        self.ids[endpoint][msg_id] += 1
        self.count[endpoint] += 1
        if self.count[endpoint] % self.verify_every == 1 % self.verify_every:
            try:
                event = self._verify(body, headers, self.secrets[endpoint])
            except Exception as exc:  # any failure is a bad delivery, reported with its reason
                self.bad.append(f"endpoint {endpoint} {msg_id}: {exc}")
                event = json.loads(body)
            else:
                self.verified += 1
        else:
            event = json.loads(body)
        self.arrivals.append((endpoint, event["data"]["recipient"], when))
        self.last = when
        self.handle_s += time.monotonic() - when

    def snapshot(self, keep_arrivals: bool) -> dict[str, Any]:
        return {
            "received": list(self.count),
            "unique": [len(ids) for ids in self.ids],
            "duplicates": [sum(n - 1 for n in ids.values() if n > 1) for ids in self.ids],
            "verified": self.verified,
            "bad": self.bad[:10],
            "bad_count": len(self.bad),
            "handle_s": self.handle_s,
            "last": self.last,
            "arrivals": self.arrivals if keep_arrivals else [],
        }


class _ReceiverProtocol(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server: read a request with a body, answer 200 at once."""

    def __init__(self, state: Receivers, endpoint: int) -> None:
        self.state = state
        self.endpoint = endpoint
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        when = time.monotonic()
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            assert self.transport is not None
            self.transport.write(_OK)  # answer first: the receiver must never be what is slow
            self.state.arrived(self.endpoint, headers, body, when)


def run_receivers(conn: Connection, ports: list[int], secrets: list[str], verify_every: int) -> None:
    """Process entry point: one listening socket per endpoint on ``ports``."""
    asyncio.run(_receivers(conn, ports, secrets, verify_every))


async def _receivers(conn: Connection, ports: list[int], secrets: list[str], verify_every: int) -> None:
    state = Receivers(secrets, verify_every)
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(lambda i=i: _ReceiverProtocol(state, i), HOST, port)  # type: ignore[misc]
        for i, port in enumerate(ports)
    ]
    conn.send("ready")
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command[0] == "snapshot":
            conn.send(state.snapshot(command[1]))
        elif command[0] == "reset":
            state.reset()
            conn.send("ok")
        else:
            break
    for server in servers:
        server.close()
    conn.send("stopped")


# -- SSE stream clients ------------------------------------------------------------------------


class _Stream:
    def __init__(self, message: str | None) -> None:
        self.message = message  # the ?message= filter, or None: every event of the account
        self.opened = asyncio.Event()
        self.got: dict[str, float] = {}  # recipient -> arrival
        self.duplicates = 0
        self.error: str | None = None

    def frame(self, text: str, when: float) -> None:
        if "\n: stream open" in "\n" + text:  # the first frame: subscribed to the hub
            self.opened.set()
        for line in text.split("\n"):
            if line.startswith("data: "):
                recipient = json.loads(line[6:])["data"]["recipient"]
                if recipient in self.got:
                    self.duplicates += 1
                else:
                    self.got[recipient] = when


class _StreamProtocol(asyncio.Protocol):
    """One ``GET /api/v1/stream`` over a raw connection: the status line, then the chunked body.

    Raw rather than httpx, like the receivers: with httpx the 500 streams took over half a
    core on a 2-core machine (its per-chunk work), time taken from the server under test and
    added to every latency measured here.
    """

    def __init__(self, stream: _Stream, request: bytes) -> None:
        self.stream = stream
        self.request = request
        self.buffer = bytearray()
        self.head_done = False
        self.text = ""  # de-chunked, not yet a whole frame
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        when = time.monotonic()
        self.buffer += data
        if not self.head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")]).decode("latin-1")
            head = bytes(self.buffer[:end]).lower()
            del self.buffer[: end + 4]
            self.head_done = True
            if not status.startswith("HTTP/1.1 200") or b"transfer-encoding: chunked" not in head:
                self.stream.error = f"unexpected answer: {status}"
                self.stream.opened.set()
                return
        while (line := self.buffer.find(b"\r\n")) >= 0:  # chunks: <hex size>\r\n<data>\r\n
            size = int(bytes(self.buffer[:line]).split(b";")[0], 16)
            if len(self.buffer) < line + 2 + size + 2:
                break
            self.text += bytes(self.buffer[line + 2 : line + 2 + size]).decode()
            del self.buffer[: line + 2 + size + 2]
        while "\n\n" in self.text:
            frame, self.text = self.text.split("\n\n", 1)
            self.stream.frame(frame, when)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stream.opened.is_set() or exc is not None:
            self.stream.error = self.stream.error or f"connection lost: {exc}"
            self.stream.opened.set()
        if not self.closed.done():
            self.closed.set_result(None)


async def _follow(port: int, key: str, stream: _Stream) -> None:
    query = f"?message={stream.message}" if stream.message else ""
    request = (
        f"GET /api/v1/stream{query} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    transport = None
    try:
        transport, protocol = await asyncio.get_running_loop().create_connection(
            lambda: _StreamProtocol(stream, request), HOST, port
        )
        await protocol.closed
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # reported: a stream that broke missed what came after
        stream.error = f"{type(exc).__name__}: {exc}"
        stream.opened.set()
    finally:
        if transport is not None:
            transport.close()


def run_streams(conn: Connection, port: int, key: str) -> None:
    """Process entry point: opens the streams of a plan on command, reports what each received."""
    asyncio.run(_streams(conn, port, key))


async def _streams(conn: Connection, port: int, key: str) -> None:
    loop = asyncio.get_running_loop()
    streams: list[_Stream] = []
    tasks: list[asyncio.Task[None]] = []
    conn.send("ready")
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command[0] == "open":
            streams = [_Stream(message) for message in command[1]]
            tasks = [asyncio.create_task(_follow(port, key, s)) for s in streams]
            started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(s.opened.wait() for s in streams)), 60)
            errors = [s.error for s in streams if s.error]
            closed = sum(not s.opened.is_set() for s in streams)
            errors += [f"{closed} streams not open after 60 s"] if closed else []
            conn.send({"seconds": time.monotonic() - started, "errors": errors[:5]})
        elif command[0] == "collect":
            conn.send(
                [
                    {"got": s.got, "duplicates": s.duplicates, "error": s.error, "message": s.message}
                    for s in streams
                ]
            )
        else:
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send("stopped")
