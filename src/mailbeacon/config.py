"""Settings from ``MAILBEACON_*`` environment variables: the one resolver.

Only the CLI (and, later, the server's entry point) calls ``Settings.from_env``;
everything else receives a ``Settings`` or the values in it. Every error names
the variable to fix. Each variable is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from mailbeacon.core.classify import ClassifierConfig, NetworkEntry
from mailbeacon.core.errors import ConfigError, KeyConfigError
from mailbeacon.core.keys import Key, KeyRing

__all__ = ["Privacy", "Settings", "generate_keyring"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
MAX_MAX_BODY_BYTES = 10 * 1024 * 1024
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class Privacy(StrEnum):
    """How much of a hit's request is kept (classification always sees all of it)."""

    FULL = "full"  # IP address and user agent as received
    ANONYMIZED = "anonymized"  # IPv4 /24 and IPv6 /48 (last bits zeroed), user agent kept
    MINIMAL = "minimal"  # neither IP nor user agent


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved configuration. ``keys`` is None when ``MAILBEACON_KEYS`` is unset."""

    keys: KeyRing | None = None
    base_url: str = DEFAULT_BASE_URL
    encrypt_tokens: bool = False
    token_ttl: timedelta | None = None
    data_dir: Path = Path("data")
    database_url: str | None = None
    privacy: Privacy = Privacy.ANONYMIZED
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    sqlite_synchronous: str = "full"
    log_level: str = "info"
    classify: ClassifierConfig = field(default_factory=ClassifierConfig)
    apple_egress_file: Path | None = None
    webhook_allow_private: bool = False
    webhook_worker: bool = True
    webhook_timeout: float = 15.0
    webhook_retry_schedule: tuple[float, ...] | None = None  # None: the Standard Webhooks schedule
    webhook_disable_after: float = 5 * 86400.0
    stream_heartbeat: float = 15.0
    background_nice: int = 10  # the ingester process's niceness under `serve`
    background_max_lag: float = 5.0  # seconds behind before the ingester stops yielding; 0: never yields

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, prefix: str = "MAILBEACON_") -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            keys=_keys(env, prefix + "KEYS"),
            base_url=env.get(prefix + "BASE_URL", "").strip() or DEFAULT_BASE_URL,
            encrypt_tokens=_bool(env, prefix + "ENCRYPT_TOKENS"),
            token_ttl=_seconds(env, prefix + "TOKEN_TTL"),
            data_dir=Path(env.get(prefix + "DATA_DIR", "").strip() or "data"),
            database_url=env.get(prefix + "DATABASE_URL", "").strip() or None,
            privacy=_choice(env, prefix + "PRIVACY", Privacy, Privacy.ANONYMIZED),
            max_body_bytes=_max_body(env, prefix + "MAX_BODY_BYTES"),
            trusted_proxies=_networks(env, prefix + "TRUSTED_PROXIES"),
            sqlite_synchronous=_choice(
                env, prefix + "SQLITE_SYNCHRONOUS", _Synchronous, _Synchronous.FULL
            ).value,
            log_level=_choice(env, prefix + "LOG_LEVEL", _LogLevel, _LogLevel.INFO).value,
            classify=_classifier(env, prefix),
            apple_egress_file=Path(egress)
            if (egress := env.get(prefix + "APPLE_EGRESS_FILE", "").strip())
            else None,
            webhook_allow_private=_bool(env, prefix + "WEBHOOK_ALLOW_PRIVATE"),
            webhook_worker=_bool(env, prefix + "WEBHOOK_WORKER", default=True),
            webhook_timeout=_positive(env, prefix + "WEBHOOK_TIMEOUT", 15.0),
            webhook_retry_schedule=_schedule(env, prefix + "WEBHOOK_RETRY_SCHEDULE"),
            webhook_disable_after=_positive(env, prefix + "WEBHOOK_DISABLE_AFTER", 5 * 86400.0),
            stream_heartbeat=_positive(env, prefix + "STREAM_HEARTBEAT", 15.0),
            background_nice=_niceness(env, prefix + "BACKGROUND_NICE", 10),
            background_max_lag=_positive(env, prefix + "BACKGROUND_MAX_LAG", 5.0, zero=True),
        )

    @property
    def resolved_database_url(self) -> str:
        """``MAILBEACON_DATABASE_URL``, or SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mailbeacon.db').resolve()}"

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


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
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


E = TypeVar("E", bound=StrEnum)


class _Synchronous(StrEnum):
    NORMAL = "normal"  # a commit survives a crash of the process, not of the machine
    FULL = "full"  # a commit survives a power loss (fsync per group commit)


class _LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def _choice(env: Mapping[str, str], name: str, enum: type[E], default: E) -> E:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ConfigError(f"{name} must be one of {allowed}, not {value!r}") from None


def _max_body(env: Mapping[str, str], name: str) -> int:
    value = env.get(name, "").strip()
    if not value:
        return DEFAULT_MAX_BODY_BYTES
    try:
        size = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of bytes, not {value!r}") from None
    if not 1024 <= size <= MAX_MAX_BODY_BYTES:
        raise ConfigError(f"{name} must be between 1024 and {MAX_MAX_BODY_BYTES} bytes, not {size}")
    return size


def _networks(env: Mapping[str, str], name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in env.get(name, "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"{name}: {item.strip()!r} is not an IP address or network (e.g. 10.0.0.0/8,::1)"
                ) from None
    return tuple(networks)


# MAILBEACON_CLASSIFY_<NAME> -> ClassifierConfig field; docs/classification.md gives sources.
_CLASSIFY_SECONDS = {
    "INSTANT_SECONDS": "instant_seconds",
    "OPEN_WINDOW": "open_window_seconds",
    "CLICK_WINDOW": "click_window_seconds",
    "PROBABLE_WINDOW": "probable_window_seconds",
    "BURST_SECONDS": "burst_seconds",
}
_CLASSIFY_COUNTS = {"BURST_LINKS": "burst_min_links", "STALE_CHROME": "stale_chrome_major"}


def _classifier(env: Mapping[str, str], prefix: str) -> ClassifierConfig:
    values: dict[str, object] = {}
    for suffix, field_name in _CLASSIFY_SECONDS.items():
        if (seconds := _number(env, f"{prefix}CLASSIFY_{suffix}", float)) is not None:
            values[field_name] = seconds
    for suffix, field_name in _CLASSIFY_COUNTS.items():
        if (number := _number(env, f"{prefix}CLASSIFY_{suffix}", int)) is not None:
            values[field_name] = number
    name = prefix + "SCANNER_NETWORKS"
    try:
        extra = tuple(NetworkEntry.parse_spec(item) for item in _items(env, name))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return ClassifierConfig(
        gmail_proxy_as_unknown=_bool(env, prefix + "GMAIL_PROXY_AS_UNKNOWN"),
        extra_networks=extra,
        sender_origins=tuple(_items(env, prefix + "SENDER_ORIGINS")),
        sender_cookies=tuple(_items(env, prefix + "SENDER_COOKIES")),
        **values,  # type: ignore[arg-type]
    )


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, kind: type[N]) -> N | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(
            f"{name} must be a {'whole ' if kind is int else ''}number, not {value!r}"
        ) from None
    if not number >= 0:  # also refuses NaN
        raise ConfigError(f"{name} must not be negative, not {value!r}")
    return number


def _items(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in env.get(name, "").split(",") if item.strip()]


def generate_keyring(key_id: str = "k1") -> KeyRing:
    """A ring with one fresh 32-byte key (randomness lives here, not in the pure core)."""
    return KeyRing([Key(key_id, secrets.token_bytes(32))])


def _positive(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    """Seconds above 0 (or, with ``zero``, 0 too, and then nothing infinite or nan)."""
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {value!r}") from None
    if zero:
        if not 0 <= seconds < float("inf"):  # also refuses nan
            raise ConfigError(f"{name} must be 0 or a positive number of seconds, not {value!r}")
    elif not seconds > 0:
        raise ConfigError(f"{name} must be positive, not {value!r}")
    return seconds


def _niceness(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        nice = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number from 0 to 19, not {value!r}") from None
    if not 0 <= nice <= 19:
        raise ConfigError(f"{name} must be from 0 (no change) to 19 (lowest priority), not {value!r}")
    return nice


def _schedule(env: Mapping[str, str], name: str) -> tuple[float, ...] | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    try:
        delays = tuple(float(item) for item in value.split(","))
    except ValueError:
        raise ConfigError(
            f"{name} must be comma-separated seconds between retries, e.g. 5,300,1800"
        ) from None
    if any(delay < 0 for delay in delays):
        raise ConfigError(f"{name}: delays must not be negative")
    return delays
