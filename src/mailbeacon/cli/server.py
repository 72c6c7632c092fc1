"""``mailbeacon serve``: the tracking server."""

from __future__ import annotations

import click

__all__ = ["SERVER_COMMANDS", "serve"]


@click.command()
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


SERVER_COMMANDS = (serve,)
