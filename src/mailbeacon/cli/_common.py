"""What every ``mailbeacon`` subcommand shares: one-line errors and the tracker options."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import click

from mailbeacon.config import Settings
from mailbeacon.core.errors import MailbeaconError
from mailbeacon.core.keys import KeyRing
from mailbeacon.tracker import Tracker

__all__ = [
    "keys_from_env",
    "metadata_option_value",
    "one_line_errors",
    "tracker_from_env",
    "tracker_options",
]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one ``error: ...`` line and a non-zero exit."""
    try:
        yield
    except MailbeaconError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


def keys_from_env(settings: Settings) -> KeyRing:
    """``MAILBEACON_KEYS``, else the key file ``mailbeacon serve`` generated in the data directory."""
    if settings.keys is None and (settings.data_dir / "keys").is_file():
        return KeyRing.parse((settings.data_dir / "keys").read_text().strip())
    return settings.require_keys()


def tracker_from_env(base_url: str | None, encrypt: bool | None, ttl: int | None) -> Tracker:
    settings = Settings.from_env()
    return Tracker(
        base_url or settings.base_url,
        keys_from_env(settings),
        encrypt=settings.encrypt_tokens if encrypt is None else encrypt,
        ttl=timedelta(seconds=ttl) if ttl else settings.token_ttl,
    )


def tracker_options(func: F) -> F:
    func = click.option("--ttl", type=click.IntRange(min=1), help="Seconds until the link expires.")(func)
    func = click.option(
        "--encrypt/--no-encrypt", default=None, help="Hide the payload (default: MAILBEACON_ENCRYPT_TOKENS)."
    )(func)
    return click.option("--base-url", help="Tracking server URL (default: MAILBEACON_BASE_URL).")(func)


def metadata_option_value(value: str | None) -> dict[str, Any] | None:
    """Parse a ``--metadata`` JSON object."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise click.BadParameter("must be a JSON object, e.g. '{\"customer\": 42}'") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"customer\": 42}'")
    return data
