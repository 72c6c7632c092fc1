"""``mailbeacon token`` and ``mailbeacon keys``: mint, inspect and generate."""

from __future__ import annotations

import json
from typing import Any

import click

from mailbeacon.cli._common import metadata_option_value, one_line_errors, tracker_from_env, tracker_options
from mailbeacon.config import Settings, generate_keyring
from mailbeacon.core.tokens import Hit, HitKind

__all__ = ["keys", "token"]


@click.group()
def token() -> None:
    """Mint and inspect tracking tokens (keys from MAILBEACON_KEYS)."""


@token.command("encode")
@click.option("--kind", type=click.Choice([k.value for k in HitKind]), default="click", show_default=True)
@click.option("--url", help="Destination (required for --kind click).")
@click.option("--message-id")
@click.option("--recipient", help="An opaque recipient id; prefer ids to addresses (tokens are readable).")
@click.option("--metadata", help="JSON object carried in the token.")
@click.option("--link", type=click.IntRange(min=0), help="Link index within the message.")
@tracker_options
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
    extra = metadata_option_value(metadata)
    with one_line_errors():
        tracker = tracker_from_env(base_url, encrypt, ttl)
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
    with one_line_errors():
        hit = tracker_from_env(None, None, None).decode(url_or_token)
        click.echo(json.dumps(_hit_json(hit), indent=2, ensure_ascii=False))


def _hit_json(hit: Hit) -> dict[str, Any]:
    data = hit._asdict()
    data["kind"] = str(hit.kind)
    data["expires_at"] = hit.expires_at.isoformat() if hit.expires_at else None
    return data


@click.group()
def keys() -> None:
    """Signing keys."""


@keys.command("generate")
@click.option("--id", "key_id", default="k1", show_default=True, help="Key id carried in every token.")
@click.option("--keep", is_flag=True, help="Append the current MAILBEACON_KEYS as older accepted keys.")
def keys_generate(key_id: str, keep: bool) -> None:
    """Print a MAILBEACON_KEYS value with a new active key."""
    with one_line_errors():
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
