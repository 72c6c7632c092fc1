"""The ``mailbeacon`` command: one module per group of subcommands.

The only place besides the server entry point that builds dependencies from the
environment. Every failure prints one line, ``error: <what to do>``, and exits
non-zero; tracebacks are for bugs only.

- ``cli/tokens.py``   ``token encode|decode``, ``keys generate``
- ``cli/rewrite.py``  ``rewrite FILE``
- ``cli/server.py``   ``serve``, ``db upgrade``, ``apikey``, ``stats``
"""

from __future__ import annotations

import click

from mailbeacon.cli.classify import classify
from mailbeacon.cli.rewrite import rewrite
from mailbeacon.cli.server import SERVER_COMMANDS
from mailbeacon.cli.tokens import keys, token

__all__ = ["main"]


@click.group()
@click.version_option(package_name="mailbeacon")
def main() -> None:
    """mailbeacon: signed tracking links, byte-exact rewriting, honest reports."""


for _command in (classify, keys, rewrite, token, *SERVER_COMMANDS):
    main.add_command(_command)
