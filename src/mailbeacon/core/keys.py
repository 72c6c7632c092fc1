"""Signing keys and the key ring that lets them rotate.

A ``KeyRing`` holds one *active* key, which signs every new token, and any
number of older *accepted* keys, which still verify tokens minted with them.
Links sit in inboxes for years, so retiring a key is a decision (drop it from
the ring and its links stop verifying), never a side effect of rotation.

The textual form, used by ``MAILBEACON_KEYS``, is ``id:base64secret,...`` with
the active key first. Secrets are at least 16 bytes (32 recommended); ids are
1-16 characters of ``[A-Za-z0-9_-]`` because each token carries its key id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from typing import Final

from mailbeacon.core.errors import KeyConfigError

__all__ = ["MIN_SECRET_BYTES", "Key", "KeyRing"]

MIN_SECRET_BYTES: Final = 16
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_BLOCK: Final = 64  # SHA-256 block size
_compare_digest: Final = hmac.compare_digest


def _derive(secret: bytes, label: bytes) -> bytes:
    # One secret per key id; separate subkeys for MAC and encryption so the same
    # bytes never serve two algorithms (HKDF-Expand with a one-block output).
    return hmac.digest(secret, label + b"\x01", "sha256")


class Key:
    """One secret with its id. ``repr`` and ``str`` never show the secret."""

    __slots__ = ("_headers", "_inner", "_outer", "enc_key", "id", "secret")

    def __init__(self, id: str, secret: bytes) -> None:
        if not isinstance(id, str) or not _KEY_ID.fullmatch(id):
            raise KeyConfigError(f"key id {id!r} must be 1-16 characters of A-Z, a-z, 0-9, '_' or '-'")
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise KeyConfigError(
                f"key {id!r}: secret must be at least {MIN_SECRET_BYTES} bytes (32 recommended); "
                "generate one with `mailbeacon keys generate`"
            )
        self.id: Final = id
        self.secret: Final = secret
        mac_key = _derive(secret, b"mailbeacon/v1/mac")
        # AES-SIV takes a double-length key: 64 bytes selects AES-256-SIV.
        self.enc_key: Final = _derive(secret, b"mailbeacon/v1/siv-a") + _derive(
            secret, b"mailbeacon/v1/siv-b"
        )
        # HMAC with the key pads hashed once. hmac.digest() re-derives them on every
        # call; starting from copies of these states halves the cost of a token.
        padded = mac_key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        kid = id.encode("ascii")
        self._headers = tuple(bytes((fmt, len(kid))) + kid for fmt in range(256))

    def header(self, fmt: int) -> bytes:
        """The token header for format byte ``fmt``: format, key id length, key id."""
        return self._headers[fmt]

    def mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under this key's MAC subkey (full 32 bytes)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def verify(self, message: bytes, tag: bytes) -> bool:
        """Whether ``tag`` is the MAC of ``message`` truncated to ``len(tag)`` bytes.

        The comparison takes constant time: a timing difference would let an
        attacker find a valid tag byte by byte. The caller checks ``len(tag)``
        (a short tag is a weak one). ``mac()`` written out, as the decoder's hot path.
        """
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _compare_digest(outer.digest()[: len(tag)], tag)

    def __repr__(self) -> str:
        return f"Key(id={self.id!r}, secret=<{len(self.secret)} bytes hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return self.id == other.id and hmac.compare_digest(self.secret, other.secret)

    def __hash__(self) -> int:
        return hash(self.id)


def _decode_secret(text: str, key_id: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyConfigError(f"key {key_id!r}: the secret is not valid base64") from None


class KeyRing:
    """The active key (first) and older keys that are still accepted."""

    __slots__ = ("_by_header", "_by_id", "active", "keys")

    def __init__(self, keys: Iterable[Key]) -> None:
        self.keys: Final = tuple(keys)
        if not self.keys:
            raise KeyConfigError("a key ring needs at least one key; the first one signs new tokens")
        self._by_id: dict[str, Key] = {}
        for key in self.keys:
            if key.id in self._by_id:
                raise KeyConfigError(f"key id {key.id!r} appears twice; each key needs its own id")
            self._by_id[key.id] = key
        self.active: Final = self.keys[0]
        self._by_header = {key.header(fmt): key for key in self.keys for fmt in range(256)}

    @classmethod
    def parse(cls, spec: str) -> KeyRing:
        """Read ``id:base64secret,id2:base64secret2``; the first key is active."""
        keys = []
        for position, entry in enumerate(spec.split(","), start=1):
            entry = entry.strip()
            if not entry:
                continue
            key_id, sep, secret = entry.partition(":")
            if not sep:
                raise KeyConfigError(f"entry {position} has no ':'; write each key as id:base64secret")
            keys.append(Key(key_id.strip(), _decode_secret(secret, key_id.strip())))
        return cls(keys)

    def get(self, key_id: str) -> Key | None:
        return self._by_id.get(key_id)

    def for_header(self, header: bytes) -> Key | None:
        """The key whose id is in this token header (format byte, length, id), in one lookup."""
        return self._by_header.get(header)

    def to_spec(self) -> str:
        """The ``MAILBEACON_KEYS`` form of this ring (contains the secrets)."""
        return ",".join(
            f"{k.id}:{base64.urlsafe_b64encode(k.secret).decode().rstrip('=')}" for k in self.keys
        )

    def __iter__(self) -> Iterator[Key]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active.id!r}, accepted={[k.id for k in self.keys[1:]]!r})"
