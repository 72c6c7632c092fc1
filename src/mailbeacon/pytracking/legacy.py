"""A strict decoder of pytracking2 tokens, for the server's opt-in compatibility mode.

pytracking2's own decoder (and :mod:`mailbeacon.pytracking.tracking`, which
keeps its behaviour) lets six exception types escape on hostile plain tokens:
``binascii.Error``, ``UnicodeDecodeError``, ``json.JSONDecodeError``,
``AttributeError`` and ``TypeError`` (JSON that is not an object of the
expected shape) and ``RecursionError`` (deeply nested JSON), plus
``InvalidToken`` for Fernet ones. It also accepts non-canonical base64 (it
skips characters outside the alphabet and ignores unused bits).

:func:`decode_legacy_token` accepts only what pytracking2 could have written,
and every failure is a :class:`~mailbeacon.core.errors.TokenError`:

============================  ====================================================
``MalformedToken``            over 4096 characters (refused before any work), not
                              canonical padded base64url, not UTF-8 JSON, not an
                              object with the expected keys and types, not a
                              Fernet token where one is required
``BadSignature``              a Fernet token whose HMAC does not verify
``TokenExpired``              a Fernet token older than ``max_age_seconds``
============================  ====================================================
"""

from __future__ import annotations

import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NoReturn

from mailbeacon.core.errors import BadSignature, MalformedToken, TokenError, TokenExpired
from mailbeacon.core.tokens import MAX_TOKEN_CHARS

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["MAX_METADATA_DEPTH", "LegacyHit", "decode_legacy_token"]

# Metadata nested deeper than this is refused: pytracking2 users put flat ids
# there, and deep nesting only serves to crash whatever re-serialises it.
MAX_METADATA_DEPTH: Final = 32

# Padded URL-safe base64, as base64.urlsafe_b64encode writes it (pytracking2
# and Fernet both do). Canonical form (zero unused bits) is checked separately.
_BASE64URL: Final = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")
_TO_STANDARD: Final = bytes.maketrans(b"-_", b"+/")
# The last character before padding may only use the bits that carry data.
_CANONICAL_BEFORE_PAD: Final = {2: frozenset("AQgw"), 1: frozenset("AEIMQUYcgkosw048")}

_KEYS: Final = frozenset(("url", "metadata", "webhook"))

# Fernet: version 0x80 | 8-byte timestamp | 16-byte IV | AES-CBC blocks | 32-byte HMAC.
_FERNET_VERSION: Final = 0x80
_FERNET_OVERHEAD: Final = 1 + 8 + 16 + 32
_FERNET_MAX_CLOCK_SKEW: Final = 60  # what cryptography allows for tokens from the future


@dataclass(frozen=True, slots=True)
class LegacyHit:
    """What a pytracking2 token carried.

    ``url`` is the click destination (None for open/pixel tokens), ``metadata``
    the embedded metadata (``{}`` if none). ``signed`` is True only for a
    Fernet token that verified under the configured key.

    A plain token (``signed=False``) is NOT authenticated: anyone can write one
    with any ``url`` and ``metadata``. A server must never redirect to the
    ``url`` of an unsigned hit (that makes it an open redirect), and should
    treat its metadata as a claim, not a fact. An embedded ``webhook`` URL is
    checked for type but deliberately not returned: POSTing to a URL taken from
    a link is server-side request forgery.
    """

    url: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    signed: bool = False


def decode_legacy_token(
    token_or_path: str,
    *,
    fernet_key: bytes | None = None,
    max_age_seconds: int | None = None,
    now: float,
) -> LegacyHit:
    """Decode a pytracking2 token strictly; raise a ``TokenError`` subclass on anything else.

    :param token_or_path: The token, or a path or URL whose last ``/``-separated
        segment is the token (pytracking2 joins tokens onto a base URL; neither
        token alphabet contains ``/``). Percent-encoding, whitespace, missing or
        extra padding and query strings are refused.
    :param fernet_key: The deployment's ``encryption_bytestring_key``. When given,
        only Fernet tokens verified under it are accepted (``signed=True``); when
        None, only plain tokens are (``signed=False``), since accepting plain
        tokens next to Fernet ones would let anyone forge links.
    :param max_age_seconds: Refuse Fernet tokens issued more than this many
        seconds before ``now`` (``TokenExpired``). Needs ``fernet_key``: plain
        tokens carry no time. None means Fernet tokens never expire, as in pytracking2.
    :param now: The current time in seconds since the epoch (only read with
        ``max_age_seconds``); passed in so that decoding is a pure function.
    :raises MalformedToken: see the module docstring.
    :raises BadSignature: a Fernet token that does not verify under ``fernet_key``.
    :raises TokenExpired: a Fernet token older than ``max_age_seconds``.
    :raises ValueError: a configuration error (bad ``fernet_key`` or ``max_age_seconds``),
        never a token error.
    """
    # Size first, before any other work: the cost of a hostile request stays constant.
    if type(token_or_path) is not str:
        raise MalformedToken(f"a token is a string, not {type(token_or_path).__name__}")
    if len(token_or_path) > MAX_TOKEN_CHARS:
        raise MalformedToken(f"token is longer than {MAX_TOKEN_CHARS} characters")
    fernet = _configured_fernet(fernet_key, max_age_seconds, now)
    try:
        raw = _strict_b64decode(token_or_path.rpartition("/")[2])
        if fernet is None:
            return _hit_from_json(raw, signed=False)
        return _hit_from_json(_fernet_open(fernet, raw, max_age_seconds, now), signed=True)
    except TokenError:
        raise
    except Exception as exc:  # a safety net: nothing but TokenError may leave this function
        raise MalformedToken(f"token could not be decoded ({type(exc).__name__})") from None


def _configured_fernet(fernet_key: bytes | None, max_age_seconds: int | None, now: float) -> Fernet | None:
    if max_age_seconds is not None:
        if type(max_age_seconds) is not int or max_age_seconds < 0:
            raise ValueError("max_age_seconds must be a non-negative int, or None")
        if not math.isfinite(now):
            raise ValueError("now must be a finite number of seconds since the epoch")
        if fernet_key is None:
            raise ValueError(
                "max_age_seconds needs fernet_key: plain pytracking2 tokens carry no time and cannot expire"
            )
    if fernet_key is None:
        return None
    try:
        from cryptography.fernet import Fernet
    except ImportError as exc:
        raise ImportError(
            "decoding Fernet pytracking2 tokens needs the 'cryptography' package: "
            "pip install 'mailbeacon[crypto]'"
        ) from exc
    return Fernet(fernet_key)


def _strict_b64decode(token: str) -> bytes:
    if not token:
        raise MalformedToken("empty token")
    if len(token) % 4 or not _BASE64URL.fullmatch(token):
        raise MalformedToken("token is not padded base64url (A-Z, a-z, 0-9, '-', '_', then '=' padding)")
    pad = len(token) - len(token.rstrip("="))
    if pad and token[-pad - 1] not in _CANONICAL_BEFORE_PAD[pad]:
        raise MalformedToken("token is not canonical base64url")
    try:
        return binascii.a2b_base64(token.encode("ascii").translate(_TO_STANDARD), strict_mode=True)
    except (binascii.Error, ValueError):  # unreachable after the checks above; kept as a guard
        raise MalformedToken("token is not base64url") from None


def _fernet_open(fernet: Fernet, raw: bytes, max_age_seconds: int | None, now: float) -> bytes:
    from cryptography.fernet import InvalidToken

    if len(raw) < _FERNET_OVERHEAD + 16 or (len(raw) - _FERNET_OVERHEAD) % 16 or raw[0] != _FERNET_VERSION:
        raise MalformedToken("not a Fernet token (wrong version byte or length)")
    # Fernet's own API takes the base64 text; ours was just checked to be canonical.
    token = binascii.b2a_base64(raw, newline=False).translate(bytes.maketrans(b"+/", b"-_"))
    if max_age_seconds is None:
        try:
            return fernet.decrypt(token)
        except InvalidToken:
            raise BadSignature("Fernet token does not verify under the configured key") from None
    try:
        return fernet.decrypt_at_time(token, ttl=max_age_seconds, current_time=int(now))
    except InvalidToken:
        _explain_fernet_failure(fernet, token, max_age_seconds, now)


def _explain_fernet_failure(fernet: Fernet, token: bytes, max_age_seconds: int, now: float) -> NoReturn:
    """Fernet says only "invalid": tell a forgery from an expired or future-dated token."""
    from cryptography.fernet import InvalidToken

    try:
        issued = fernet.extract_timestamp(token)  # verifies the HMAC
    except InvalidToken:
        raise BadSignature("Fernet token does not verify under the configured key") from None
    if issued + max_age_seconds < int(now):
        raise TokenExpired(f"Fernet token is {int(now) - issued} s old, over the {max_age_seconds} s limit")
    if issued > int(now) + _FERNET_MAX_CLOCK_SKEW:
        raise MalformedToken("Fernet token is dated in the future")
    raise BadSignature("Fernet token verified but did not decrypt")


def _reject_constant(name: str) -> NoReturn:
    raise MalformedToken(f"token JSON holds {name}, which JSON does not allow")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedToken("token JSON holds a number out of range")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedToken("token JSON repeats a key")
    return obj


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant, parse_float=_finite_float
)


def _hit_from_json(raw: bytes, *, signed: bool) -> LegacyHit:
    try:
        text = raw.decode("utf-8")
        data = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedToken("token does not hold UTF-8 JSON") from None
    if type(data) is not dict:
        raise MalformedToken("token JSON is not an object")
    unknown = data.keys() - _KEYS
    if unknown:
        raise MalformedToken(f"token JSON has unexpected keys {sorted(unknown)!r}")
    url = data.get("url")
    if "url" in data and (type(url) is not str or not url):
        raise MalformedToken("token 'url' must be a non-empty string")
    metadata = data.get("metadata", {})
    if type(metadata) is not dict:
        raise MalformedToken("token 'metadata' must be an object")
    if "webhook" in data and type(data["webhook"]) is not str:
        raise MalformedToken("token 'webhook' must be a string")
    for value in (url, data.get("webhook")):
        if value is not None:
            _check_text(value)
    _check_metadata(metadata)
    return LegacyHit(url=url, metadata=metadata, signed=signed)


def _check_metadata(metadata: dict[str, Any]) -> None:
    """Refuse lone surrogates (they cannot be re-encoded) and nesting past MAX_METADATA_DEPTH.

    The metadata object is level 1; every list or object inside it adds a level.
    """
    stack: list[tuple[Any, int]] = [(metadata, 1)]
    while stack:
        value, depth = stack.pop()
        if type(value) is str:
            _check_text(value)
            continue
        if type(value) is not dict and type(value) is not list:
            continue
        if depth > MAX_METADATA_DEPTH:
            raise MalformedToken(f"token metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
        if type(value) is dict:
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in value)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedToken("token JSON holds a lone surrogate") from None
