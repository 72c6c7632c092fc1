"""The ``mailbeacon`` command.

The only place besides the server entry point that builds dependencies from the
environment. Every failure prints one line, ``error: <what to do>``, and exits
non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import email
import email.policy
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from mailbeacon.config import Settings, generate_keyring
from mailbeacon.core.errors import MailbeaconError
from mailbeacon.core.html import PixelPosition
from mailbeacon.core.tokens import Hit, HitKind
from mailbeacon.tracker import GmailClipWarning, Tracker

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except MailbeaconError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None


@click.group()
@click.version_option(package_name="mailbeacon")
def main() -> None:
    """mailbeacon: signed tracking links, byte-exact rewriting, honest reports."""


def _tracker(base_url: str | None, encrypt: bool | None, ttl: int | None) -> Tracker:
    settings = Settings.from_env()
    return Tracker(
        base_url or settings.base_url,
        settings.require_keys(),
        encrypt=settings.encrypt_tokens if encrypt is None else encrypt,
        ttl=timedelta(seconds=ttl) if ttl else settings.token_ttl,
    )


def _tracker_options(func: F) -> F:
    func = click.option("--ttl", type=click.IntRange(min=1), help="Seconds until the link expires.")(func)
    func = click.option(
        "--encrypt/--no-encrypt", default=None, help="Hide the payload (default: MAILBEACON_ENCRYPT_TOKENS)."
    )(func)
    return click.option("--base-url", help="Tracking server URL (default: MAILBEACON_BASE_URL).")(func)


def _metadata(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise click.BadParameter("must be a JSON object, e.g. '{\"customer\": 42}'") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"customer\": 42}'")
    return data


# -- token ---------------------------------------------------------------------


@main.group()
def token() -> None:
    """Mint and inspect tracking tokens (keys from MAILBEACON_KEYS)."""


@token.command("encode")
@click.option("--kind", type=click.Choice([k.value for k in HitKind]), default="click", show_default=True)
@click.option("--url", help="Destination (required for --kind click).")
@click.option("--message-id")
@click.option("--recipient", help="An opaque recipient id; prefer ids to addresses (tokens are readable).")
@click.option("--metadata", help="JSON object carried in the token.")
@click.option("--link", type=click.IntRange(min=0), help="Link index within the message.")
@_tracker_options
def token_encode(
    kind: str,
    url: str | None,
    message_id: str | None,
    recipient: str | None,
    metadata: str | None,
    link: int | None,
    base_url: str | None,
    encrypt: bool | None,
    ttl: int | None,
) -> None:
    """Print a tracking URL."""
    extra = _metadata(metadata)
    with _one_line_errors():
        tracker = _tracker(base_url, encrypt, ttl)
        common: dict[str, Any] = {"message_id": message_id, "recipient": recipient, "metadata": extra}
        if kind == HitKind.CLICK:
            if not url:
                raise click.UsageError("--kind click needs --url")
            click.echo(tracker.click_url(url, link=link, **common))
        elif kind == HitKind.OPEN:
            click.echo(tracker.open_url(**common))
        else:
            click.echo(tracker.unsubscribe_url(**common))


@token.command("decode")
@click.argument("url_or_token")
def token_decode(url_or_token: str) -> None:
    """Verify a tracking URL or token and print what it carries, as JSON."""
    with _one_line_errors():
        hit = _tracker(None, None, None).decode(url_or_token)
        click.echo(json.dumps(_hit_json(hit), indent=2, ensure_ascii=False))


def _hit_json(hit: Hit) -> dict[str, Any]:
    data = hit._asdict()
    data["kind"] = str(hit.kind)
    data["expires_at"] = hit.expires_at.isoformat() if hit.expires_at else None
    return data


# -- rewrite -------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here, not stdout."
)
@click.option("--message-id")
@click.option("--recipient")
@click.option("--metadata", help="JSON object carried in every token.")
@click.option("--clicks/--no-clicks", default=True, help="Track links.")
@click.option("--open/--no-open", "open_", default=True, help="Insert the open pixel.")
@click.option("--pixel", type=click.Choice([p.value for p in PixelPosition]), help="Where the pixel goes.")
@click.option("--text-links", is_flag=True, help=".eml: also track bare URLs in text/plain parts.")
@click.option("--list-unsubscribe", is_flag=True, help=".eml: add RFC 8058 one-click unsubscribe headers.")
@click.option("--eml", "force_eml", is_flag=True, help="Treat FILE (or stdin) as a MIME message.")
@_tracker_options
def rewrite(
    file: str,
    output: str | None,
    message_id: str | None,
    recipient: str | None,
    metadata: str | None,
    clicks: bool,
    open_: bool,
    pixel: str | None,
    text_links: bool,
    list_unsubscribe: bool,
    force_eml: bool,
    base_url: str | None,
    encrypt: bool | None,
    ttl: int | None,
) -> None:
    """Track an .html file or an .eml message; every byte not tracked is kept."""
    extra = _metadata(metadata)
    with _one_line_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GmailClipWarning)
        tracker = _tracker(base_url, encrypt, ttl)
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        common: dict[str, Any] = {
            "message_id": message_id,
            "recipient": recipient,
            "metadata": extra,
            "click_tracking": clicks,
            "open_tracking": open_,
            "pixel_position": pixel,
        }
        if force_eml or file.lower().endswith(".eml"):
            msg = email.message_from_bytes(data, policy=email.policy.default)
            tracked = tracker.track_message(
                msg, text_links=text_links, list_unsubscribe=list_unsubscribe, **common
            )
            result = tracked.as_bytes(policy=email.policy.SMTP)
        else:
            try:
                html = data.decode("utf-8")
            except UnicodeDecodeError:
                raise click.ClickException(
                    f"{file} is not UTF-8; convert it, or wrap it in an .eml with its charset"
                ) from None
            result = tracker.track_html(html, **common).encode("utf-8")
        if output:
            Path(output).write_bytes(result)
        else:
            sys.stdout.buffer.write(result)
            sys.stdout.buffer.flush()
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)


# -- keys ----------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Signing keys."""


@keys.command("generate")
@click.option("--id", "key_id", default="k1", show_default=True, help="Key id carried in every token.")
@click.option("--keep", is_flag=True, help="Append the current MAILBEACON_KEYS as older accepted keys.")
def keys_generate(key_id: str, keep: bool) -> None:
    """Print a MAILBEACON_KEYS value with a new active key."""
    with _one_line_errors():
        ring = generate_keyring(key_id)
        spec = ring.to_spec()
        current = Settings.from_env().keys if keep else None
        if current is not None:
            if current.get(key_id) is not None:
                raise click.ClickException(
                    f"key id {key_id!r} is already in MAILBEACON_KEYS; pick a new --id"
                )
            spec += "," + current.to_spec()
        click.echo(spec)


# -- serve -----------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int) -> None:
    """Run the tracking server (arrives with the server release)."""
    click.echo(
        f"mailbeacon {_version()}: the tracking server comes next (it would listen on http://{host}:{port}).\n"
        "Today: `mailbeacon token encode|decode`, `mailbeacon rewrite FILE`, and the Python library "
        "(see README.md)."
    )


def _version() -> str:
    from mailbeacon import __version__

    return __version__
