"""The HTTP protocol of ``mailbeacon serve``: tracking hits answered without an ASGI task.

uvicorn's httptools protocol parses every request. A ``GET`` or ``HEAD`` under
``/o/``, ``/c/`` or ``/u/`` is then answered right here, in the protocol's
parser callback: ``TrackingEndpoints.answer`` verifies the token and queues the
hit on the hit log, and the response bytes are written when the hit log's
group write is done. Everything else (the API, the stream, ``POST /u/``) goes
through uvicorn's own request cycle to the ASGI app, unchanged.

Why by hand: no server library has a hook below ASGI for one route, and ASGI
is most of what a hit costs there. Measured with ``wrk -t1 -c64`` on a
pixel that waits for a group write like the hit log's (``docs/server.md``):
Granian's ASGI about 19 µs of CPU a request, uvicorn's ASGI cycle about 27,
this path about 7.5. What it takes from uvicorn's ``HttpToolsProtocol`` (a
``cycle`` with ``response_complete``/``keep_alive``/``disconnected``, the
``pipeline`` of queued requests, ``on_response_complete``) is its documented
way to serve pipelined requests in order; ``pyproject.toml`` bounds uvicorn's
version and ``tests/server/test_fastpath.py`` covers keep-alive, pipelining,
``HEAD``, HTTP/1.0 and clients that hang up.

It also bounds what a request may send before any work: a request target over
``MAX_TARGET`` bytes gets ``414``, headers over ``MAX_HEADER_BYTES`` or
``MAX_HEADERS`` in number get ``431``, and the connection closes.
"""

from __future__ import annotations

from typing import Any, Final

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from mailbeacon.server import responses as r
from mailbeacon.server.tracking import Answer, TrackingEndpoints

__all__ = ["MAX_HEADERS", "MAX_HEADER_BYTES", "MAX_TARGET", "TrackingProtocol"]

MAX_TARGET: Final = 8 * 1024
MAX_HEADER_BYTES: Final = 256 * 1024  # a 100 KB user agent is still classified (as a machine), not refused
MAX_HEADERS: Final = 100
_TRACKING: Final = (b"/o/", b"/c/", b"/u/")
_FAST_METHODS: Final = {b"GET": "GET", b"HEAD": "HEAD"}  # the methods answered here, as str


_CLOSE: Final = b"connection: close\r\n"


def _head(headers: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


# The pixel's header block, built once: most hits are pixels.
_PIXEL_HEAD: Final = _head(r.PIXEL_HEADERS)


# uvicorn's default headers (the Date) as bytes, for the list they were built from: uvicorn
# replaces that list once a second, so every hit in between reuses these bytes.
_default_head: tuple[object, bytes] = (None, b"")


def _serialize(answer: Answer, default: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    global _default_head
    if _default_head[0] is not default:
        _default_head = (default, _head(default))
    head = _PIXEL_HEAD if answer.headers is r.PIXEL_HEADERS else _head(answer.headers)
    close = b"" if keep_alive else _CLOSE
    return b"".join((STATUS_LINE[answer.status], _default_head[1], head, close, b"\r\n", answer.body))


class _NoEvent:
    """uvicorn sets its cycle's ``message_event`` as the body arrives; a tracking GET ignores its body."""

    @staticmethod
    def set() -> None:
        return None


class _TrackingCycle:
    """One tracking request, in uvicorn's ``RequestResponseCycle`` shape (what its protocol reads).

    It is also the hit log's waiter for its hit (``store.group``): the group write calls
    ``set_result`` and the response is written right there, with no future and no callback
    scheduled for a later turn of the loop. It is sent once both the hit is written and
    the cycle is started (a request pipelined behind another starts when that one is done).
    """

    __slots__ = (
        "answer",
        "body",
        "disconnected",
        "endpoints",
        "keep_alive",
        "more_body",
        "ok",
        "protocol",
        "response_complete",
        "started",
    )

    message_event: Final = _NoEvent()
    answer: Answer

    def __init__(self, protocol: TrackingProtocol, endpoints: TrackingEndpoints, keep_alive: bool) -> None:
        self.protocol = protocol
        self.endpoints = endpoints
        self.keep_alive = keep_alive
        self.ok: bool | None = None  # the hit log's verdict, once it has written the hit
        self.started = False
        self.response_complete = False
        self.disconnected = False
        self.more_body = True
        self.body = b""

    # -- the hit log's waiter -----------------------------------------------------------------

    def done(self) -> bool:
        return self.ok is not None

    def set_result(self, ok: bool, /) -> None:
        self.ok = ok
        self.endpoints.settle(ok)
        if self.started:
            self.respond()

    # -- uvicorn's cycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.started = True
        if self.answer.recorded is None or self.ok is not None:
            self.respond()

    def respond(self) -> None:
        protocol = self.protocol
        self.response_complete = True
        if self.disconnected:
            return
        protocol.transport.write(
            _serialize(self.answer, protocol.server_state.default_headers, self.keep_alive)
        )
        if not self.keep_alive:
            protocol.transport.close()
        protocol.on_response_complete()


class TrackingProtocol(HttpToolsProtocol):
    """uvicorn's ``HttpToolsProtocol``, answering tracking ``GET``/``HEAD`` itself."""

    endpoints: TrackingEndpoints | None

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.endpoints = _tracking_endpoints(self.app)
        self._header_bytes = 0
        self._refused = False
        self._idle_since: float | None = None  # when the last response finished; None while busy
        if not getattr(server_state, "mailbeacon_keep_alive_sweep", False):
            server_state.mailbeacon_keep_alive_sweep = True
            self.loop.call_later(_SWEEP_SECONDS, _sweep_idle, self.loop, server_state)

    # -- keep-alive: one sweep a second, not a timer per response ------------------------------
    # uvicorn arms a call_later timer after every response and cancels it when the next
    # request begins: ~1.8 µs of a hit's time on uvloop. A connection here only notes when
    # it went idle; ``_sweep_idle`` closes those idle for ``timeout_keep_alive`` (within a
    # second more), as uvicorn's timer would.

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_since = self.loop.time()

    def _unset_keepalive_if_required(self) -> None:
        # uvicorn arms its keep-alive timer only in on_response_complete, overridden above, so
        # there is never one to cancel here (uvicorn calls this on every data_received).
        self._idle_since = None

    # -- limits: before any work ----------------------------------------------------------------

    # The parser callbacks below do what uvicorn's do, inline: they run for every request
    # and every header, and a super() call each cost ~0.1 µs. uvicorn's ASGI scope is built
    # only for a request that takes its path (``_asgi_scope``): a tracking hit never reads it.

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > MAX_TARGET:
            self._refuse(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES or len(self.headers) >= MAX_HEADERS:
            self._refuse(431, "request headers too large")
            return
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace, which RFC 9110 excludes
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle  # uvicorn types it as its own cycle; here it may be ours
        if type(cycle) is not _TrackingCycle:  # a tracking GET's body, if any, is ignored
            super().on_message_complete()

    def _asgi_scope(self) -> None:
        """uvicorn's ``on_message_begin`` builds the scope (and resets what was parsed since)."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def _refuse(self, status: int, why: str) -> None:
        if self.transport.is_closing():
            return
        body = why.encode("ascii") + b"\n"
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)
            + _CLOSE
            + b"\r\n"
            + body
        )
        self.transport.close()
        self._refused = True
        raise _Refused  # stops the parser; it raises HttpParserCallbackError in data_received

    def data_received(self, data: bytes) -> None:
        # uvicorn's, but a request refused by a limit above is not answered a second time.
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()  # no WebSocket here (uvicorn runs with ws="none")
        except httptools.HttpParserError:
            if not self._refused:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")

    # -- the fast path ---------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        url = self.url
        endpoints = self.endpoints
        if (
            endpoints is None
            or url[:3] not in _TRACKING
            or b"%" in url
            or self.parser.should_upgrade()
            or (method := _FAST_METHODS.get(self.parser.get_method())) is None
        ):
            self._asgi_scope()
            super().on_headers_complete()
            return
        path = url.partition(b"?")[0].decode("latin-1")
        client = self.client
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        cycle = _TrackingCycle(self, endpoints, keep_alive)
        cycle.answer = endpoints.answer(method, path, self.headers, client[0] if client else None, cycle)
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if existing is None or existing.response_complete:
            cycle.start()
        else:  # pipelined behind a response still in progress: answered in order, as uvicorn does
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, None))  # type: ignore[arg-type]

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if isinstance(cycle, _TrackingCycle):
            cycle.start()
        else:
            super()._start_asgi_task(cycle, app)


_SWEEP_SECONDS: Final = 1.0


def _sweep_idle(loop: Any, server_state: Any) -> None:
    """Close the connections idle past their keep-alive timeout; run again in a second."""
    now = loop.time()
    for protocol in list(server_state.connections):
        since = getattr(protocol, "_idle_since", None)
        if since is not None and now - since >= protocol.timeout_keep_alive:
            protocol.timeout_keep_alive_handler()
    loop.call_later(_SWEEP_SECONDS, _sweep_idle, loop, server_state)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a refused request."""


def _tracking_endpoints(app: Any) -> TrackingEndpoints | None:
    """The app's tracking endpoints, through any wrapping uvicorn added; None if it has none."""
    for _ in range(8):
        tracking = getattr(app, "tracking", None)
        if isinstance(tracking, TrackingEndpoints):
            return tracking
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
