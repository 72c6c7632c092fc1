"""Settings from ``MAILBEACON_*`` environment variables: the one resolver.

Only the CLI (and, later, the server's entry point) calls ``Settings.from_env``;
everything else receives a ``Settings`` or the values in it. Every error names
the variable to fix. Each variable is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from mailbeacon.core.errors import ConfigError, KeyConfigError
from mailbeacon.core.keys import Key, KeyRing

__all__ = ["Settings", "generate_keyring"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved configuration. ``keys`` is None when ``MAILBEACON_KEYS`` is unset."""

    keys: KeyRing | None = None
    base_url: str = DEFAULT_BASE_URL
    encrypt_tokens: bool = False
    token_ttl: timedelta | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "MAILBEACON_") -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            keys=_keys(env, prefix + "KEYS"),
            base_url=env.get(prefix + "BASE_URL", "").strip() or DEFAULT_BASE_URL,
            encrypt_tokens=_bool(env, prefix + "ENCRYPT_TOKENS"),
            token_ttl=_seconds(env, prefix + "TOKEN_TTL"),
        )

    def require_keys(self, prefix: str = "MAILBEACON_") -> KeyRing:
        if self.keys is None:
            raise ConfigError(
                f"{prefix}KEYS is not set; create one with `mailbeacon keys generate` "
                f"and export {prefix}KEYS=<what it prints>"
            )
        return self.keys


def _keys(env: Mapping[str, str], name: str) -> KeyRing | None:
    spec = env.get(name, "").strip()
    if not spec:
        return None
    try:
        return KeyRing.parse(spec)
    except KeyConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _seconds(env: Mapping[str, str], name: str) -> timedelta | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, not {value!r}") from None
    if seconds <= 0:
        raise ConfigError(f"{name} must be positive; leave it unset for links that never expire")
    return timedelta(seconds=seconds)


def generate_keyring(key_id: str = "k1") -> KeyRing:
    """A ring with one fresh 32-byte key (randomness lives here, not in the pure core)."""
    return KeyRing([Key(key_id, secrets.token_bytes(32))])
