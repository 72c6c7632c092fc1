"""``mailbeacon rewrite``: track an .html file or an .eml message."""

from __future__ import annotations

import email
import email.policy
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from mailbeacon.cli._common import metadata_option_value, one_line_errors, tracker_from_env, tracker_options
from mailbeacon.core.html import PixelPosition
from mailbeacon.tracker import GmailClipWarning

__all__ = ["rewrite"]


@click.command()
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
@tracker_options
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
    extra = metadata_option_value(metadata)
    with one_line_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GmailClipWarning)
        tracker = tracker_from_env(base_url, encrypt, ttl)
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
