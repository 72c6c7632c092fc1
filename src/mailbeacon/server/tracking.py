"""``/o/``, ``/c/`` and ``/u/``: the tracking endpoints, as plain ASGI.

They are the hot path, so they skip the framework: one function parses the
path, verifies the token, records the hit through the group-commit hit log
and answers with prebuilt bytes. Rules:

- The pixel is always served (200, a 43-byte GIF, never cached), even for a
  forged or expired token: a broken image helps nobody, and the answer must
  not tell a prober which tokens are valid. Nothing is recorded then.
- A click redirects (302) only to a destination that was signed. Any token
  failure answers 404 with a plain page, never a redirect.
- ``HEAD`` is answered like ``GET`` but never recorded: it carries no
  engagement (link checkers and prefetchers send it), and recording it would
  let anyone inflate opens with cheap requests.
- ``GET /u/`` only shows a confirmation form: mail scanners follow links, so
  a GET must never unsubscribe. ``POST /u/`` with ``List-Unsubscribe=One-Click``
  (RFC 8058) records the unsubscribe.
- A hit is on disk before its response is sent (``store.hitlog``; the ingester
  moves it into the database, ``store.ingest``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, NamedTuple, Protocol, overload
from urllib.parse import quote, urlsplit, urlunsplit

from mailbeacon.config import Privacy
from mailbeacon.core.errors import InvalidDestination, TokenError
from mailbeacon.core.events import UNKNOWN, Classification, EventType, RequestFacts, Verdict
from mailbeacon.core.keys import KeyRing
from mailbeacon.core.tokens import HONEYPOT_FIELD, Hit, HitKind, check_destination, decode_token
from mailbeacon.server import responses as r
from mailbeacon.store.group import W, Waiter
from mailbeacon.store.recorder import EventRow

__all__ = ["CLASSIFIER_HEADERS", "Answer", "TrackingEndpoints"]

log = logging.getLogger("mailbeacon.tracking")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Classify = Callable[[RequestFacts], Verdict]

_KIND_OF: Final = {"o": HitKind.OPEN, "c": HitKind.CLICK, "u": HitKind.UNSUBSCRIBE}
_EVENT_OF: Final = {
    HitKind.OPEN: EventType.OPENED.value,
    HitKind.CLICK: EventType.CLICKED.value,
    HitKind.UNSUBSCRIBE: EventType.UNSUBSCRIBED.value,
}
# Plain strings looked up per hit: an enum's .value is a property call (~0.1 µs, four a hit).
_KIND_VALUE: Final = {kind: kind.value for kind in HitKind}
_VERIFIED: Final = {kind: f"verified:{kind.value}" for kind in HitKind}
_CLASSIFICATION_VALUE: Final = {label: label.value for label in Classification}
# The request headers a classifier reads (prefetch hints, proxies, client families).
CLASSIFIER_HEADERS: Final = frozenset(
    {
        b"user-agent",
        b"purpose",
        b"sec-purpose",
        b"x-purpose",
        b"x-moz",
        b"sec-fetch-mode",
        b"sec-fetch-dest",
        b"sec-fetch-site",
        b"accept",
        b"accept-language",
        b"via",
        b"from",
        b"x-forwarded-for",
        b"forwarded",
        b"referer",
        b"cookie",  # only its names are kept (the sender-view cookie); values never are
    }
)
_ONE_CLICK: Final = frozenset({b"List-Unsubscribe=One-Click", b"List-Unsubscribe=One-Click\r\n"})
_MAX_UNSUBSCRIBE_BODY: Final = 1024


class Answer(NamedTuple):
    """A tracking response: send it once ``recorded`` (the hit log's future or the caller's
    waiter, if a hit was recorded) is done."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    recorded: Waiter | None = None


def _not_found(head: bool) -> Answer:
    return Answer(404, r.NOT_FOUND_HEADERS, b"" if head else r.NOT_FOUND)


class HitSink(Protocol):
    """Where a hit goes: ``store.hitlog.HitLog`` (or, for an embedded app, a ``Recorder``)."""

    @overload
    def record(self, row: EventRow) -> asyncio.Future[bool]: ...

    @overload
    def record(self, row: EventRow, waiter: W) -> W: ...


def never_classified(_facts: RequestFacts) -> Verdict:
    """The classification seam before a classifier is plugged in: every hit is ``unknown``."""
    return UNKNOWN


def anonymize_ip(ip: str) -> str | None:
    """IPv4 to its /24, IPv6 to its /48: enough for coarse location, not for a household."""
    try:
        # inet_pton takes exactly what ipaddress.IPv4Address takes (four decimal octets,
        # 0-255, no leading zeros) in ~0.2 µs; ipaddress costs ~10 µs a hit.
        socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError):  # ValueError: an embedded NUL
        pass
    else:
        return ip[: ip.rindex(".")] + ".0"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def redirect_location(url: str) -> bytes:
    """The Location header for a signed destination: ASCII, with IRIs encoded as browsers do."""
    url = check_destination(url)  # the MAC verified; this guards against a buggy minter sharing our key
    if url.isascii():
        return url.encode("ascii")
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = quote(host, safe="")
    netloc = parts.netloc.replace(host, ascii_host, 1) if host else parts.netloc
    safe = "/?#[]@!$&'()*+,;=:%~-._"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=safe),
            quote(parts.query, safe=safe),
            quote(parts.fragment, safe=safe),
        )
    ).encode("ascii")


class TrackingEndpoints:
    """The ASGI handler for every path under ``/o/``, ``/c/`` and ``/u/``."""

    def __init__(
        self,
        *,
        keys: KeyRing,
        recorder: HitSink,
        default_account: str,
        known_account: Callable[[str], bool],
        privacy: Privacy = Privacy.ANONYMIZED,
        client_ip: Callable[[str | None, Mapping[str, str]], str | None] | None = None,
        classify: Classify = never_classified,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._recorder = recorder
        self._default_account = default_account
        self._known_account = known_account
        self._privacy = privacy
        self._client_ip = client_ip or (lambda peer, _headers: peer)
        self._classify = classify
        self._clock = clock
        self.counts: dict[str, int] = {}
        self._anonymized: dict[str, str | None] = {}  # client address -> as stored (anonymized)

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: what ``create_app`` serves outside ``mailbeacon serve`` (embedded, test clients)."""
        method: str = scope["method"]
        peer = scope.get("client")
        if method == "POST" and scope["path"][1] == "u":
            await self._unsubscribe_post(scope, receive, send, peer[0] if peer else None)
            return
        answer = self.answer(method, scope["path"], scope["headers"], peer[0] if peer else None)
        if isinstance(answer.recorded, asyncio.Future):
            self.settle(await answer.recorded)
        await _send(send, answer)

    def answer(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        peer: str | None,
        waiter: Waiter | None = None,
    ) -> Answer:
        """The answer to any tracking request but ``POST /u/`` (which has a body to read first).

        Synchronous, so the HTTP protocol (``server.fastpath``) can answer without an ASGI
        task. When a hit is recorded, ``recorded`` is the hit log's future, or ``waiter`` if
        one was given (``store.group``): send the answer only once it is done, and pass its
        result to ``settle``.
        """
        kind = _KIND_OF[path[1]]
        if method not in ("GET", "HEAD"):
            headers_405 = [*r.html_headers(r.METHOD_NOT_ALLOWED), (b"allow", b"GET, HEAD")]
            if kind is HitKind.UNSUBSCRIBE:
                headers_405[-1] = (b"allow", b"GET, HEAD, POST")
            return Answer(405, headers_405, r.METHOD_NOT_ALLOWED)
        head = method == "HEAD"
        hit = self._verify(path[3:], kind)
        if kind is HitKind.OPEN:
            recorded = None if hit is None or head else self._record(method, headers, peer, hit, waiter)
            pixel: Answer = _new_tuple(Answer, (200, r.PIXEL_HEADERS, b"" if head else r.GIF, recorded))
            return pixel  # most hits are pixels: built as the row is, from a whole tuple
        if kind is HitKind.CLICK:
            if hit is None or hit.url is None:
                return _not_found(head)
            try:
                location = redirect_location(hit.url)
            except InvalidDestination:
                self._count("rejected:InvalidDestination")
                return _not_found(head)
            recorded = None if head else self._record(method, headers, peer, hit, waiter)
            return Answer(302, [(b"location", location), *r.REDIRECT_FIXED_HEADERS], b"", recorded)
        if hit is None:
            return _not_found(head)
        return Answer(200, r.UNSUBSCRIBE_FORM_HEADERS, b"" if head else r.UNSUBSCRIBE_FORM)

    def settle(self, recorded: bool) -> None:
        """Count a hit the hit log could not write (the response still goes out: a broken pixel
        or a dead link helps nobody; the recorder has logged why)."""
        if not recorded:
            self._count("record_failed")

    def _verify(self, token: str, kind: HitKind) -> Hit | None:
        try:
            hit = decode_token(token, self._keys, now=self._clock(), kind=kind)
        except TokenError as exc:
            self._count(f"rejected:{type(exc).__name__}")
            return None
        self._count(_VERIFIED[kind])
        return hit

    async def _unsubscribe_post(self, scope: Scope, receive: Receive, send: Send, peer: str | None) -> None:
        hit = self._verify(scope["path"][3:], HitKind.UNSUBSCRIBE)
        if hit is None:
            await _send(send, _not_found(False))
            return
        body = await _read_body(receive, _MAX_UNSUBSCRIBE_BODY)
        if body is None or body.strip() not in _ONE_CLICK:
            await _send(send, Answer(400, r.html_headers(r.BAD_UNSUBSCRIBE), r.BAD_UNSUBSCRIBE))
            return
        recorded = self._record("POST", scope["headers"], peer, hit)
        if isinstance(recorded, asyncio.Future):
            self.settle(await recorded)
        await _send(send, Answer(200, r.html_headers(r.UNSUBSCRIBED), r.UNSUBSCRIBED))

    def _record(
        self,
        method: str,
        raw_headers: list[tuple[bytes, bytes]],
        peer: str | None,
        hit: Hit,
        waiter: Waiter | None = None,
    ) -> Waiter | None:
        account = hit.account or self._default_account
        if hit.message_id is None or not self._known_account(account):
            self._count("unattributed")  # a valid token we cannot file under a message of a known account
            return None
        headers = _classifier_headers(raw_headers)
        ip = self._client_ip(peer, headers)
        at = self._clock()
        # Built from whole tuples, every field in order, as the row below: the named tuple's
        # own __new__ binds each argument again (~0.2 µs a tuple; ~0.5 more with keywords).
        facts: RequestFacts = _new_tuple(
            RequestFacts,
            (
                _KIND_VALUE[hit.kind],
                method,
                at,
                headers.get("user-agent"),
                ip,
                headers,
                None,  # sent_at
                None,  # delivered_at
                hit.link,
                bool(hit.metadata) and HONEYPOT_FIELD in hit.metadata,
            ),
        )
        # Timing (sent_at, delivered_at) is not known here: looking it up would cost a
        # database read per hit. The store's reviser (store.revision) applies it, and the
        # per-message evidence, right after the commit, off the request path.
        try:
            verdict = self._classify(facts)
        except Exception:  # a classifier bug must cost a label, never the pixel or the redirect
            log.exception("classification failed; recording the hit as unknown")
            self._count("classify_failed")
            verdict = UNKNOWN
        kept_ip, kept_agent, kept_headers = self._kept(ip, headers)
        # All sixteen fields, in EventRow's order.
        row: EventRow = _new_tuple(
            EventRow,
            (
                account,
                hit.message_id,
                hit.recipient or "",
                _EVENT_OF[hit.kind],
                at,
                hit.link,
                hit.url,
                _CLASSIFICATION_VALUE[verdict.classification],
                " ".join(verdict.reasons),
                verdict.confidence,
                method,
                kept_ip,
                kept_agent,
                kept_headers,
                None,
                _HONEYPOT_DETAIL if facts.honeypot else None,
            ),
        )
        return self._recorder.record(row) if waiter is None else self._recorder.record(row, waiter)

    def _kept(self, ip: str | None, headers: dict[str, str]) -> tuple[str | None, str | None, str | None]:
        """The IP, user agent and other headers as stored, by the privacy level."""
        if self._privacy is Privacy.MINIMAL:
            return None, None, None
        if self._privacy is Privacy.ANONYMIZED:
            ip = self._anonymize(ip) if ip else None
        extra = {k: v for k, v in headers.items() if k not in _NOT_KEPT}
        if "cookie" in extra:  # names only: a session cookie's value is a credential
            extra["cookie"] = _cookie_names(extra["cookie"])
        return ip, headers.get("user-agent"), _to_json(extra) if extra else None

    def _anonymize(self, ip: str) -> str | None:
        # Remembered by address: proxies and scanners send most hits from a few (~0.4 µs a
        # hit otherwise); bounded, so a flood of addresses only empties it.
        kept: str | None = self._anonymized.get(ip, _MISSING)
        if kept is _MISSING:
            kept = anonymize_ip(ip)
            if len(self._anonymized) >= _ANONYMIZED_MEMO:
                self._anonymized.clear()
            self._anonymized[ip] = kept
        return kept


_NOT_KEPT: Final = frozenset({"user-agent", "x-forwarded-for", "forwarded"})
_ANONYMIZED_MEMO: Final = 4096
_MISSING: Final[Any] = object()
_new_tuple: Final[Any] = tuple.__new__  # a named tuple from a whole tuple, without its __new__
# One encoder for every hit: json.dumps with any keyword builds a new JSONEncoder per call
# (~1 µs of a hit's ~10).
_to_json: Final = json.JSONEncoder(ensure_ascii=False).encode
# What a stored honeypot click carries, so a reclassification knows it was one.
_HONEYPOT_DETAIL: Final = json.dumps({"honeypot": True})


def _cookie_names(cookie: str) -> str:
    """``a=1; b=2`` -> ``a=; b=``: what the sender-view rule matches, without the secrets."""
    return "; ".join(part.split("=", 1)[0].strip() + "=" for part in cookie.split(";") if "=" in part)


def _classifier_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    # ASGI servers give lower-case names; values are bytes in any encoding, so
    # latin-1 (lossless) keeps a binary or malformed value classifiable, and a
    # 100 KB header cannot blow up what is stored.
    return {
        name.decode("latin-1"): value[:2048].decode("latin-1")
        for name, value in raw
        if name in CLASSIFIER_HEADERS
    }


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None if it is longer than ``limit``."""
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


async def _send(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})
