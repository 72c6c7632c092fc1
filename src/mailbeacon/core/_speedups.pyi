"""Type stub of the optional compiled scanner (core/_speedups.pyx)."""

from collections.abc import Callable
from typing import TypeVar

_H = TypeVar("_H")

def scan(
    html: str,
    links: bool,
    href_type: Callable[[int, int, str], _H],
    opted_out: Callable[[str, int, int], bool],
) -> tuple[list[tuple[str, _H]], int, int, int]: ...
def b64url_decode(token: str) -> bytes | None: ...
def body_padding(fields: object) -> tuple[None, ...] | None: ...
