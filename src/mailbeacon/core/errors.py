"""Every exception mailbeacon raises on purpose, in one tree.

::

    MailbeaconError
    ├── TokenError                  a tracking token could not be trusted; nothing in it may be used
    │   ├── MalformedToken          not base64url, over 4 KB, truncated, unknown version, wrong kind for path
    │   ├── UnknownKey              signed with a key id that is not in the key ring
    │   ├── BadSignature            MAC (or AEAD tag) did not verify: forged or tampered
    │   └── TokenExpired            verified, but past its expiry
    ├── KeyConfigError              MAILBEACON_KEYS or a Key is unusable (ValueError)
    ├── InvalidDestination          a click destination that must never be signed (ValueError)
    ├── PayloadTooLarge             the token would exceed the 4 KB that decoders accept (ValueError)
    └── ConfigError                 a MAILBEACON_* setting is missing or invalid (ValueError)

Callers catch ``TokenError`` at one boundary (the server does, once) and treat
every subclass the same way: serve the pixel, refuse the redirect. The
subclasses exist for logs and metrics, and their messages say what to do.
"""

from __future__ import annotations

__all__ = [
    "BadSignature",
    "ConfigError",
    "InvalidDestination",
    "KeyConfigError",
    "MailbeaconError",
    "MalformedToken",
    "PayloadTooLarge",
    "TokenError",
    "TokenExpired",
    "UnknownKey",
]


class MailbeaconError(Exception):
    """Base class of every error mailbeacon raises on purpose."""


class TokenError(MailbeaconError):
    """A tracking token failed verification. Never use anything decoded from it."""


class MalformedToken(TokenError):
    """The token is not one mailbeacon could have minted (syntax, size, version, kind)."""


class UnknownKey(TokenError):
    """The token names a key id the key ring does not hold."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"token signed with key id {key_id!r}, which is not in MAILBEACON_KEYS; "
            "add it to the accepted keys or re-issue the links"
        )


class BadSignature(TokenError):
    """The MAC or AEAD tag did not verify: the token was forged or altered."""


class TokenExpired(TokenError):
    """The token verified but its expiry has passed."""


class KeyConfigError(MailbeaconError, ValueError):
    """A signing key or key ring specification is unusable."""


class InvalidDestination(MailbeaconError, ValueError):
    """A click destination that would make the tracker an open redirect or inject headers."""


class PayloadTooLarge(MailbeaconError, ValueError):
    """The token would be longer than decoders accept (4 KB)."""


class ConfigError(MailbeaconError, ValueError):
    """A MAILBEACON_* setting is missing or invalid; the message names the variable."""
