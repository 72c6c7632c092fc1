"""``Tracker``: the library's front door.

A thin shell over the pure core: it holds the base URL and the key ring, reads
the clock for expiry, and turns core results into URLs, HTML and messages.

    tracker = Tracker("https://t.example.com", keys=KeyRing.parse(os.environ["MAILBEACON_KEYS"]))
    html = tracker.track_html(html, message_id="m-42", recipient="r-7")
    hit = tracker.decode(url)          # raises a TokenError subclass on anything untrustworthy
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from itertools import count
from typing import Any, Final

from mailbeacon.core import mime
from mailbeacon.core.errors import ConfigError, InvalidDestination, MalformedToken
from mailbeacon.core.html import PixelPosition, RewriteResult, rewrite_html
from mailbeacon.core.keys import KeyRing
from mailbeacon.core.text import rewrite_text_links
from mailbeacon.core.tokens import (
    HONEYPOT_FIELD,
    MAX_TOKEN_CHARS,
    ClickMinter,
    Hit,
    HitKind,
    check_destination,
    decode_token,
    encode_token,
)

__all__ = ["GmailClipWarning", "Tracker"]

_PATH_OF: Final = {HitKind.OPEN: "o", HitKind.CLICK: "c", HitKind.UNSUBSCRIBE: "u"}
# Reading a member off an Enum class goes through its metaclass (about 60 ns in
# CPython 3.11); the URL methods are hot enough to read these globals instead.
_OPEN: Final = HitKind.OPEN
_CLICK: Final = HitKind.CLICK
_UNSUBSCRIBE: Final = HitKind.UNSUBSCRIBE
_KIND_OF_PATH: Final = {path + "/": kind for kind, path in _PATH_OF.items()}
# A URL may carry a base path and a query string around its token; anything far
# longer than a token cannot be one and is refused before any work.
_MAX_URL_CHARS: Final = MAX_TOKEN_CHARS + 2048


class GmailClipWarning(UserWarning):
    """The tracked HTML is larger than Gmail shows before clipping (~102 KB)."""


class Tracker:
    """Mints tracking URLs, rewrites HTML and MIME messages, and decodes hits.

    ``keys`` signs (its active key) and verifies (every key in the ring).
    ``encrypt=True`` hides recipient and metadata from anyone holding a link
    (needs ``mailbeacon[crypto]``). ``ttl`` makes links expire; by default they
    never do, because mail is read years later. ``account`` is carried in every
    token so a shared server can file the hits under the right sender.
    """

    def __init__(
        self,
        base_url: str,
        keys: KeyRing,
        *,
        encrypt: bool = False,
        ttl: timedelta | None = None,
        account: str | None = None,
        pixel_position: PixelPosition | str = PixelPosition.BODY_START,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(keys, KeyRing):
            raise TypeError("keys must be a KeyRing, e.g. KeyRing.parse(os.environ['MAILBEACON_KEYS'])")
        try:
            self.base_url: Final = check_destination(base_url).rstrip("/")
        except InvalidDestination as exc:
            raise ConfigError(f"base_url {base_url!r} must be an absolute http(s) URL: {exc}") from None
        if ttl is not None and ttl.total_seconds() <= 0:
            raise ConfigError("ttl must be positive, or None for links that never expire")
        self.keys: Final = keys
        self.encrypt: Final = encrypt
        self.ttl: Final = ttl
        self.account: Final = account
        self.pixel_position: Final = PixelPosition(pixel_position)
        self._clock = clock
        self._prefix = {kind: f"{self.base_url}/{path}/" for kind, path in _PATH_OF.items()}
        self._kind_of_head = {prefix[:-1]: kind for kind, prefix in self._prefix.items()}

    def __repr__(self) -> str:
        return f"Tracker({self.base_url!r}, keys={self.keys!r}, encrypt={self.encrypt})"

    # -- URLs ---------------------------------------------------------------

    def open_url(
        self,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """The pixel URL, ``{base_url}/o/{token}``."""
        return self._url(_OPEN, None, message_id, recipient, metadata, None, expires_at)

    def click_url(
        self,
        url: str,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        link: int | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """A redirect to ``url`` through ``{base_url}/c/{token}``; only http(s) destinations are signed."""
        return self._url(_CLICK, url, message_id, recipient, metadata, link, expires_at)

    def unsubscribe_url(
        self,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """The one-click unsubscribe URL, ``{base_url}/u/{token}`` (RFC 8058)."""
        return self._url(_UNSUBSCRIBE, None, message_id, recipient, metadata, None, expires_at)

    def _url(
        self,
        kind: HitKind,
        url: str | None,
        message_id: str | None,
        recipient: str | None,
        metadata: Mapping[str, Any] | None,
        link: int | None,
        expires_at: datetime | None,
    ) -> str:
        expires = self._expiry(expires_at)
        token = encode_token(
            self.keys,
            kind,
            message_id=message_id,
            recipient=recipient,
            url=url,
            metadata=metadata,
            expires_at=expires,
            account=self.account,
            link=link,
            encrypt=self.encrypt,
        )
        return self._prefix[kind] + token

    def _expiry(self, expires_at: datetime | None) -> int | None:
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ValueError(
                    "expires_at must be timezone-aware (e.g. datetime.now(UTC) + timedelta(days=30))"
                )
            return int(expires_at.timestamp())
        if self.ttl is None:
            return None
        return int(self._clock() + self.ttl.total_seconds())

    # -- decoding -----------------------------------------------------------

    def decode(self, url_or_token: str) -> Hit:
        """Verify a tracking URL or bare token; raise a ``TokenError`` subclass if it cannot be trusted.

        A URL whose path names a kind (``/o/``, ``/c/``, ``/u/``) must carry a
        token of that kind: an open token is never honoured as a click.
        """
        if type(url_or_token) is str:
            # Our own URL shape, {base}/{o|c|u}/{token}: one rpartition and one lookup
            # find the kind, without parsing. A query string or fragment makes that
            # token malformed; then the URL is parsed after all.
            head, slash, token = url_or_token.rpartition("/")
            kind = self._kind_of_head.get(head)
            if kind is not None:
                try:
                    return decode_token(token, self.keys, now=self._clock(), kind=kind)
                except MalformedToken:
                    if "?" not in token and "#" not in token:
                        raise
            elif not slash:
                return decode_token(url_or_token, self.keys, now=self._clock())
        token, kind = _split_url(url_or_token)
        return decode_token(token, self.keys, now=self._clock(), kind=kind)

    # -- HTML and MIME ------------------------------------------------------

    def rewrite_html(
        self,
        html: str,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        click_tracking: bool = True,
        open_tracking: bool = True,
        pixel_position: PixelPosition | str | None = None,
        honeypot: bool | str = False,
    ) -> RewriteResult:
        """Track ``html`` and report what changed: links, pixels, size and Gmail clipping.

        ``honeypot`` adds a hidden link that only machines follow (a click on it is
        ``machine``, reason ``honeypot``, and exposes that client's other clicks); it
        redirects to the string given, or to the base URL for True.
        """
        return self._rewrite_html(
            html,
            self._link_minter(message_id, recipient, metadata, count()) if click_tracking else None,
            self.open_url(message_id=message_id, recipient=recipient, metadata=metadata)
            if open_tracking
            else None,
            pixel_position,
            self.honeypot_url(honeypot, message_id=message_id, recipient=recipient, metadata=metadata),
        )

    def honeypot_url(
        self,
        destination: bool | str = True,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str | None:
        """The click URL of the hidden honeypot link (None for ``destination=False``)."""
        if destination is False:
            return None
        url = self.base_url + "/" if destination is True else destination
        marked = {**(metadata or {}), HONEYPOT_FIELD: 1}
        return self._url(_CLICK, url, message_id, recipient, marked, None, None)

    def track_html(
        self,
        html: str,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        click_tracking: bool = True,
        open_tracking: bool = True,
        pixel_position: PixelPosition | str | None = None,
        honeypot: bool | str = False,
    ) -> str:
        """Return ``html`` with links tracked and the pixel inserted; every other byte is kept.

        Warns with ``GmailClipWarning`` when the result exceeds Gmail's ~102 KB
        clip limit (the pixel goes right after ``<body>`` by default, so opens
        are still seen, but the reader sees "[Message clipped]").
        """
        result = self.rewrite_html(
            html,
            message_id=message_id,
            recipient=recipient,
            metadata=metadata,
            click_tracking=click_tracking,
            open_tracking=open_tracking,
            pixel_position=pixel_position,
            honeypot=honeypot,
        )
        _warn_if_clipped(result)
        return result.html

    def track_message(
        self,
        msg: EmailMessage,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        click_tracking: bool = True,
        open_tracking: bool = True,
        text_links: bool = False,
        list_unsubscribe: bool = False,
        list_unsubscribe_mailto: str | None = None,
        pixel_position: PixelPosition | str | None = None,
    ) -> EmailMessage:
        """Return a tracked copy of ``msg``: HTML parts rewritten, attachments untouched.

        ``message_id`` defaults to the message's ``Message-ID`` header.
        ``text_links`` also tracks bare URLs in text/plain parts.
        ``list_unsubscribe`` adds RFC 8058 one-click ``List-Unsubscribe`` headers
        (the base URL must then be https).
        """
        if message_id is None and msg["Message-ID"]:
            message_id = str(msg["Message-ID"]).strip().strip("<>")
        links = count()  # one numbering across all parts, so link indexes are unique per message
        mint = self._link_minter(message_id, recipient, metadata, links) if click_tracking else None
        pixel = (
            self.open_url(message_id=message_id, recipient=recipient, metadata=metadata)
            if open_tracking
            else None
        )

        def html_part(html: str) -> str:
            result = self._rewrite_html(html, mint, pixel, pixel_position)
            _warn_if_clipped(result)
            return result.html

        def text_part(text: str) -> str:
            assert mint is not None
            return rewrite_text_links(text, mint)[0]

        headers = None
        if list_unsubscribe:
            unsubscribe = self.unsubscribe_url(message_id=message_id, recipient=recipient, metadata=metadata)
            headers = mime.list_unsubscribe_headers(unsubscribe, mailto=list_unsubscribe_mailto)
        return mime.track_message(
            msg,
            rewrite_html=html_part,
            rewrite_text=text_part if text_links and mint is not None else None,
            headers=headers,
        )

    def _rewrite_html(
        self,
        html: str,
        click_url: Callable[[str, int], str | None] | None,
        pixel_url: str | None,
        pixel_position: PixelPosition | str | None,
        honeypot_url: str | None = None,
    ) -> RewriteResult:
        return rewrite_html(
            html,
            click_url=click_url,
            pixel_url=pixel_url,
            pixel_position=self.pixel_position if pixel_position is None else pixel_position,
            honeypot_url=honeypot_url,
        )

    def _link_minter(
        self,
        message_id: str | None,
        recipient: str | None,
        metadata: Mapping[str, Any] | None,
        numbering: count[int],
    ) -> Callable[[str, int], str | None]:
        """The rewriters' callback: destination -> tracked URL, numbering links across parts."""
        minter = ClickMinter(
            self.keys,
            message_id=message_id,
            recipient=recipient,
            metadata=metadata,
            expires_at=self._expiry(None),
            account=self.account,
            encrypt=self.encrypt,
        )
        prefix = self._prefix[_CLICK]

        def mint(url: str, _index: int) -> str | None:
            link = next(numbering)
            try:
                return prefix + minter(url, link)
            except InvalidDestination:
                return None  # the rewriter leaves a link it cannot sign exactly as it was

        return mint


def _split_url(url: str) -> tuple[str, HitKind | None]:
    if not isinstance(url, str):
        raise MalformedToken(f"expected a tracking URL or token string, not {type(url).__name__}")
    if len(url) > _MAX_URL_CHARS:
        raise MalformedToken(f"tracking URL is longer than {_MAX_URL_CHARS} characters")
    path = url.partition("?")[0].partition("#")[0].rstrip("/")
    parent, _, token = path.rpartition("/")
    return token, _KIND_OF_PATH.get(parent.rpartition("/")[2] + "/")


def _warn_if_clipped(result: RewriteResult) -> None:
    if result.clipped:
        warnings.warn(
            GmailClipWarning(
                f"tracked HTML is {result.size:,} bytes; Gmail clips messages over ~102 KB "
                "and hides the rest behind 'View entire message'. Trim the template or link to a web version."
            ),
            stacklevel=3,
        )
