"""Tracking tokens: what every /o/, /c/ and /u/ URL carries.

Wire format, base64url without padding over::

    byte 0       format: version (high nibble, 1) | encrypted (bit 3) | kind (bits 0-2)
    byte 1       n, the length of the key id (1-16)
    bytes 2..    key id, ASCII
    signed       body || HMAC-SHA256(header || body), truncated to 16 bytes (128 bits)
    encrypted    AES-SIV(body) with the header as associated data (16-byte synthetic IV + ciphertext)

The body is a msgpack array ``[message_id, recipient, url, metadata, expires,
account, link]`` with trailing empty fields dropped. msgpack was chosen by
measurement (``benchmarks/payload_formats.py``): for this shape it is the
smallest, about 4-5x faster than compact JSON and about 2x faster than CBOR.

Decoding trusts nothing before the MAC verifies: the size cap comes first (4 KB,
before any decoding), then the strict base64url alphabet, the header, the key
lookup, the MAC in constant time, and only then the payload. Every failure
raises a ``TokenError`` subclass and nothing else.

AES-SIV is deterministic: the same payload gives the same token, which keeps
links stable and dedupable while hiding recipient and metadata from anyone
without the key. It adds the same 16 bytes as the MAC, where AES-GCM would add
28 (nonce and tag).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from itertools import product
from typing import Any, Final, NamedTuple

import msgpack

from mailbeacon.core.errors import (
    BadSignature,
    InvalidDestination,
    MalformedToken,
    PayloadTooLarge,
    TokenError,
    TokenExpired,
    UnknownKey,
)
from mailbeacon.core.keys import Key, KeyRing

__all__ = [
    "HONEYPOT_FIELD",
    "MAC_BYTES",
    "MAX_TOKEN_CHARS",
    "ClickMinter",
    "Hit",
    "HitKind",
    "check_destination",
    "decode_token",
    "encode_token",
]

VERSION: Final = 1
# The metadata key that marks a click token as the hidden honeypot link (``Tracker``'s
# ``honeypot=True``): only machines follow that link.
HONEYPOT_FIELD: Final = "_mb_honeypot"
MAC_BYTES: Final = 16
MAX_TOKEN_CHARS: Final = 4096
_ENCRYPTED: Final = 0x08
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NO_HOST: Final = ("", "/", "?", "#", "\\", " ")


class HitKind(StrEnum):
    OPEN = "open"
    CLICK = "click"
    UNSUBSCRIBE = "unsubscribe"


_CODE_OF: Final = {HitKind.OPEN: 0, HitKind.CLICK: 1, HitKind.UNSUBSCRIBE: 2}
_KIND_OF: Final = {0: HitKind.OPEN, 1: HitKind.CLICK, 2: HitKind.UNSUBSCRIBE}
# Reading a member off an Enum class goes through its metaclass (about 60 ns in
# CPython 3.11, a dozen times a global's cost): the hot paths use this global.
_CLICK: Final = HitKind.CLICK


class Hit(NamedTuple):
    """What a verified token says. Only ever built from a token whose MAC verified."""

    kind: HitKind
    key_id: str
    message_id: str | None = None
    recipient: str | None = None
    url: str | None = None
    metadata: dict[str, Any] = {}  # noqa: RUF012 - NamedTuple default; decode always builds a fresh dict
    expires_at: datetime | None = None
    account: str | None = None
    link: int | None = None
    encrypted: bool = False


def check_destination(url: str) -> str:
    """Return ``url`` ready to sign as a redirect target, or raise ``InvalidDestination``.

    Only http(s) is signed: a click token must never become a ``javascript:`` or
    ``data:`` link, and a CR or LF in a destination would split the redirect's
    headers. A protocol-relative ``//host`` becomes ``https://host``.
    """
    if type(url) is str and url.isprintable() and url[-1:] != " ":  # isprintable: no CR, LF, NUL, ...
        host_at = 8 if url.startswith("https://") else 7 if url.startswith("http://") else 0
        if host_at and url[host_at : host_at + 1] not in _NO_HOST:
            return url  # the common case, checked in a few C calls
    if not isinstance(url, str):
        raise InvalidDestination(f"destination must be a string, not {type(url).__name__}")
    url = url.strip()
    if url.startswith("//"):
        url = "https:" + url
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise InvalidDestination(f"only http and https destinations can be tracked, not {url[:40]!r}")
    if not rest or rest[0] in "/?#\\":
        raise InvalidDestination(f"destination {url[:60]!r} has no host")
    if _CONTROL.search(url):
        raise InvalidDestination(
            "destination contains a control character (CR, LF, NUL, ...); refusing to sign it"
        )
    return url


def _b64encode(raw: bytes) -> str:
    # str.replace on an ASCII string is a memchr-driven C loop: measured faster
    # than translating the bytes and decoding them afterwards.
    return binascii.b2a_base64(raw, newline=False).decode().replace("+", "-").replace("/", "_").rstrip("=")


# One packer for the process: Packer.pack runs entirely in C under the GIL (no
# `default` hook), and reusing it skips building a Packer per token.
_PACKER: Final = msgpack.Packer(use_bin_type=True)


def _siv(key: Key) -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise MalformedToken(
            "encrypted tokens need the 'cryptography' package; pip install 'mailbeacon[crypto]'"
        ) from None
    cipher = _SIV_CACHE.get(key.enc_key)
    if cipher is None:
        cipher = _SIV_CACHE[key.enc_key] = AESSIV(key.enc_key)
    return cipher


# Memo of AES-SIV objects (expanding the key schedule costs more than a token).
_SIV_CACHE: dict[bytes, Any] = {}


def encode_token(
    keys: KeyRing,
    kind: HitKind,
    *,
    message_id: str | None = None,
    recipient: str | None = None,
    url: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    expires_at: int | None = None,
    account: str | None = None,
    link: int | None = None,
    encrypt: bool = False,
) -> str:
    """Mint a token with the ring's active key.

    ``url`` is required for click tokens and is checked with ``check_destination``;
    ``expires_at`` is a Unix time in seconds.
    """
    if url is not None:
        url = check_destination(url)
    elif kind is _CLICK:
        raise InvalidDestination("a click token needs a destination url")
    if type(message_id) not in _OPT_STR or type(recipient) not in _OPT_STR or type(account) not in _OPT_STR:
        raise TypeError("message_id, recipient and account must be strings or None")
    if metadata is not None and type(metadata) is not dict:
        metadata = dict(metadata)
    body: list[Any] = [message_id, recipient, url, metadata or None]
    if expires_at is not None or account is not None or link is not None:
        _check_optional_ints(expires_at, link)
        body += (expires_at, account, link)
    while body and body[-1] is None:
        body.pop()
    key = keys.active
    return _seal(key, _CODE_OF[kind] | (_ENCRYPTED if encrypt else 0), _pack(body))


class ClickMinter:
    """Click tokens for the links of one message, each with its destination and link index.

    ``minter(url, link)`` returns exactly what ``encode_token(keys, HitKind.CLICK,
    url=url, link=link, **fields)`` would, for a message with many links: every
    field but the two that vary is checked and packed once. A msgpack array is
    its header followed by its packed elements, so the body is built by
    concatenating bytes packed in advance. With a link index no field is
    trailing and dropped, so the array always has all seven.
    """

    __slots__ = ("_after_url", "_before_url", "_flags", "_key")

    def __init__(
        self,
        keys: KeyRing,
        *,
        message_id: str | None = None,
        recipient: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: int | None = None,
        account: str | None = None,
        encrypt: bool = False,
    ) -> None:
        if (
            type(message_id) not in _OPT_STR
            or type(recipient) not in _OPT_STR
            or type(account) not in _OPT_STR
        ):
            raise TypeError("message_id, recipient and account must be strings or None")
        _check_optional_ints(expires_at, None)
        if metadata is not None and type(metadata) is not dict:
            metadata = dict(metadata)
        pack = _PACKER.pack
        self._key: Final = keys.active
        self._flags: Final = _CODE_OF[_CLICK] | (_ENCRYPTED if encrypt else 0)
        self._before_url: Final = _pack_array_header(len(_FIELD_TYPES)) + pack(message_id) + pack(recipient)
        # metadata goes through _pack for its error message; [1:] drops the
        # one-byte header of the one-element array around it.
        self._after_url: Final = _pack([metadata or None])[1:] + pack(expires_at) + pack(account)

    def __call__(self, url: str, link: int) -> str:
        """The token for destination ``url`` (checked with ``check_destination``), link ``link``."""
        if type(link) is not int or link < 0:
            raise TypeError("link must be a non-negative int")
        pack = _PACKER.pack
        body = self._before_url + pack(check_destination(url)) + self._after_url + pack(link)
        return _seal(self._key, self._flags, body)


def _pack_array_header(size: int) -> bytes:
    # The header of an array of ``size`` elements: an array of that many nils,
    # each packed as one byte, with the nils cut off.
    header: bytes = _PACKER.pack([None] * size)[:-size]
    return header


def _check_optional_ints(expires_at: object, link: object) -> None:
    if link is not None and (type(link) is not int or link < 0):
        raise TypeError("link must be a non-negative int or None")
    if expires_at is not None and type(expires_at) is not int:
        raise TypeError("expires_at must be a Unix time in whole seconds (int) or None")


def _pack(body: list[Any]) -> bytes:
    try:
        packed: bytes = _PACKER.pack(body)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(
            "metadata must hold only str, int, float, bool, None, bytes, lists and dicts "
            f"with str keys ({exc})"
        ) from None
    return packed


def _seal(key: Key, flags: int, packed: bytes) -> str:
    header = key.header(VERSION << 4 | flags)
    if flags & _ENCRYPTED:
        token = _b64encode(header + _siv(key).encrypt(packed, [header]))
    else:
        signed = header + packed
        token = _b64encode(signed + key.mac(signed)[:MAC_BYTES])
    if len(token) > MAX_TOKEN_CHARS:
        raise PayloadTooLarge(
            f"the token would be {len(token)} characters, over the {MAX_TOKEN_CHARS} decoders accept; "
            "put less in metadata (carry ids, not documents)"
        )
    return token


_OPT_STR: Final = frozenset((str, type(None)))


_PADDING: Final = ("", "", "==", "=")
# base64 is malleable in its last character ("QQ" and "QR" decode alike): the
# unused low bits must be zero, so that one token has exactly one spelling.
_CANONICAL_LAST: Final = ("", "", "AQgw", "AEIMQUYcgkosw048")
_NOT_BASE64URL: Final = "token is not base64url (A-Z, a-z, 0-9, '-', '_', no padding)"


_b64url_decode: Callable[[str], bytes | None] | None
try:  # the optional compiled module (core/_speedups.pyx); None from it means "decide here"
    from mailbeacon.core._speedups import b64url_decode as _b64url_decode
except ImportError:
    _b64url_decode = None


def _b64decode(token: str) -> bytes:
    if type(token) is not str:
        raise MalformedToken(f"a token is a string, not {type(token).__name__}")
    size = len(token)
    if size > MAX_TOKEN_CHARS:
        # Refused before any decoding work: the cost of a bad request stays constant.
        raise MalformedToken(f"token is longer than {MAX_TOKEN_CHARS} characters")
    if _b64url_decode is not None and (raw := _b64url_decode(token)) is not None:
        return raw  # a canonical token, decoded in one C pass; anything else is judged below
    # "+" and "/" are the standard alphabet's spelling of "-" and "_": refused
    # before the mapping, so that one token has one spelling. a2b_base64 reads an
    # ASCII str directly and refuses any other (ValueError), and str.replace is
    # cheaper than encoding and translating the bytes.
    if "+" in token or "/" in token:
        raise MalformedToken(_NOT_BASE64URL)
    tail = size % 4
    try:
        raw = binascii.a2b_base64(
            token.replace("-", "+").replace("_", "/") + _PADDING[tail], strict_mode=True
        )
    except (binascii.Error, ValueError):
        raise MalformedToken(_NOT_BASE64URL) from None
    if tail > 1 and token[-1] not in _CANONICAL_LAST[tail]:
        raise MalformedToken("token is not canonical base64url")
    return raw


def decode_token(token: str, keys: KeyRing, *, now: float, kind: HitKind | None = None) -> Hit:
    """Verify ``token`` and return what it carries, or raise a ``TokenError`` subclass.

    With ``kind``, a token of another kind is refused: the server passes the kind
    its path names, so an open token is never honoured as a click.
    """
    raw = _b64decode(token)
    header_end = 2 + raw[1] if len(raw) > 2 else 0
    key = keys.for_header(raw[:header_end])
    fmt = raw[0] if raw else 0
    found = _KIND_OF.get(fmt & 0x07)
    if key is None or found is None or fmt >> 4 != VERSION:
        raise _explain_bad_header(raw, keys)
    if kind is not None and found is not kind:
        raise MalformedToken(f"this is a token for {found}, not for {kind}")
    if fmt & _ENCRYPTED:
        return _build_hit(found, key.id, _decrypt(key, raw, header_end), True, now)
    signed = raw[:-MAC_BYTES]
    # Key.verify compares in constant time; the length test keeps the tag at
    # MAC_BYTES, since a shorter raw would leave a shorter (weaker) one.
    if len(signed) < header_end or not key.verify(signed, raw[-MAC_BYTES:]):
        raise BadSignature("token signature does not verify; it was altered or not minted with these keys")
    return _build_hit(found, key.id, signed[header_end:], False, now)


def _explain_bad_header(raw: bytes, keys: KeyRing) -> TokenError:
    """The precise error for a header that did not match a known key and format."""
    if len(raw) < 3 or not 1 <= raw[1] <= 16 or len(raw) < 2 + raw[1]:
        return MalformedToken("token is truncated: its header is incomplete")
    if raw[0] >> 4 != VERSION:
        return MalformedToken(
            f"token format version {raw[0] >> 4} is not supported (this is version {VERSION})"
        )
    if raw[0] & 0x07 not in _KIND_OF:
        return MalformedToken("token names an unknown kind")
    key_id = raw[2 : 2 + raw[1]].decode("ascii", "replace")
    return UnknownKey(key_id)


def _decrypt(key: Key, raw: bytes, header_end: int) -> bytes:
    from cryptography.exceptions import InvalidTag

    if len(raw) < header_end + 16:
        raise MalformedToken("encrypted token is truncated")
    try:
        plain: bytes = _siv(key).decrypt(raw[header_end:], [raw[:header_end]])
    except InvalidTag:
        raise BadSignature(
            "encrypted token does not verify; it was altered or not minted with these keys"
        ) from None
    return plain


def _expiry(expires: int, now: float) -> datetime:
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedToken("token expiry is out of range") from None
    if expires <= now:
        raise TokenExpired(f"token expired at {expires_at.isoformat()}; mint a new link")
    return expires_at


def _build_hit(kind: HitKind, key_id: str, body: bytes, encrypted: bool, now: float) -> Hit:
    # The MAC has verified, so the body is ours; the checks below guard against
    # a key shared with a buggy or hostile minter, not against forgery.
    try:
        fields = _unpackb(body)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise MalformedToken("token payload is not valid msgpack") from None
    # One table lookup checks every field's type (see _SHAPES) instead of seven
    # if-tests, and gives the Nones that pad the body to its seven fields (in C
    # when the compiled module is built: _body_padding).
    pad = _body_padding(fields)
    if pad is None:
        raise MalformedToken("token payload has the wrong shape or a field of the wrong type")
    fields += pad
    message_id, recipient, url, metadata, expires, account, link = fields
    if url is None and kind is _CLICK:
        raise MalformedToken("click token carries no destination")
    return _new_hit(
        Hit,
        (
            kind,
            key_id,
            message_id,
            recipient,
            url,
            {} if metadata is None else metadata,
            None if expires is None else _expiry(expires, now),
            account,
            link,
            encrypted,
        ),
    )


_unpackb: Final = msgpack.unpackb
# Every type signature a body may have: [message_id, recipient, url, metadata,
# expires, account, link], any length up to 7, each field its type or None;
# each maps to the Nones that complete a body of that length.
_FIELD_TYPES: Final = ((str,), (str,), (str,), (dict,), (int,), (str,), (int,))
_SHAPES: Final[dict[tuple[type, ...], tuple[None, ...]]] = {
    shape: (None,) * (len(_FIELD_TYPES) - n)
    for n in range(len(_FIELD_TYPES) + 1)
    for shape in product(*((*types, type(None)) for types in _FIELD_TYPES[:n]))
}


def _pure_body_padding(fields: object) -> tuple[None, ...] | None:
    """The Nones that complete a well-typed body to seven fields, or None if it is not one."""
    return _SHAPES.get(tuple(map(type, fields))) if type(fields) is list else None


_body_padding: Callable[[object], tuple[None, ...] | None]
try:  # the same lookup in C (core/_speedups.pyx), a quarter of the time
    from mailbeacon.core._speedups import body_padding as _body_padding
except ImportError:
    _body_padding = _pure_body_padding


# NamedTuple's generated __new__ handles defaults and keywords; the decoder
# always passes every field, so it builds the tuple directly (about 3x faster).
_new_hit = tuple.__new__
