"""Identifiers: time-ordered message ids and API keys."""

from __future__ import annotations

import hashlib
import secrets
import time

__all__ = ["hash_api_key", "new_api_key", "new_id"]

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
API_KEY_PREFIX = "mb_"


def new_id() -> str:
    """A ULID-shaped id: 48 bits of milliseconds then 80 random bits, Crockford base32, 26 characters.

    Time-ordered, so ids sort by creation and index well. Written here because
    it is ten lines and the standard library only gains uuid7 in Python 3.14.
    """
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_api_key() -> str:
    """A bearer key: the prefix and 32 random bytes (256 bits), URL-safe."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # SHA-256, not a password hash: the key is 256 random bits, so there is
    # nothing to brute-force, and authentication stays one indexed lookup.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
