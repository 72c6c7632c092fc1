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


async def _follow(client: Any, url: str, key: str, stream: _Stream) -> None:
    params = {"message": stream.message} if stream.message else {}
    try:
        async with client.stream(
            "GET", url, params=params, headers={"authorization": f"Bearer {key}"}
        ) as response:
            if response.status_code != 200:
                stream.error = f"HTTP {response.status_code}"
                stream.opened.set()
                return
            pending = ""
            async for chunk in response.aiter_text():
                when = time.monotonic()
                pending += chunk
                while "\n\n" in pending:
                    text, pending = pending.split("\n\n", 1)
                    stream.frame(text, when)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # reported: a stream that broke missed what came after
        stream.error = f"{type(exc).__name__}: {exc}"
        stream.opened.set()


def run_streams(conn: Connection, port: int, key: str) -> None:
    """Process entry point: opens the streams of a plan on command, reports what each received."""
    asyncio.run(_streams(conn, port, key))


async def _streams(conn: Connection, port: int, key: str) -> None:
    import httpx

    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(10.0, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        url = f"http://{HOST}:{port}/api/v1/stream"
        streams: list[_Stream] = []
        tasks: list[asyncio.Task[None]] = []
        conn.send("ready")
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "open":
                streams = [_Stream(message) for message in command[1]]
                tasks = [asyncio.create_task(_follow(client, url, key, s)) for s in streams]
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
