"""The sender's own view: a tracked message with its pixel and tracking taken out.

A helpdesk or CRM that shows the sender the message it sent must not fire the
pixel or the links: "customer viewed" would then mean "you looked". The API's
``POST /api/v1/preview`` takes the tracked HTML and gives it back with every
pixel and honeypot link of this server removed and every tracked link pointing
at its signed destination again. Only tokens that verify and belong to the
caller's account are touched; anything else stays byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailbeacon.core.errors import TokenError
from mailbeacon.core.tokens import Hit
from mailbeacon.tracker import Tracker

__all__ = ["Preview", "untrack_html"]

_TOKEN: Final = r"[A-Za-z0-9_-]{8,4096}"  # noqa: S105 - a pattern, not a secret


@dataclass(frozen=True, slots=True)
class Preview:
    html: str
    pixels_removed: int
    links_untracked: int


def untrack_html(html: str, tracker: Tracker, account: str | None) -> Preview:
    """``html`` without this server's tracking, for ``account`` (None: the default account)."""
    base = re.escape(tracker.base_url)
    pixel = re.compile(rf"<img\b[^>]*?\bsrc\s*=\s*[\"']?{base}/o/({_TOKEN})[^>]*>", re.IGNORECASE)
    click = re.compile(rf"{base}/c/({_TOKEN})")
    honeypot = re.compile(
        rf"<a\b[^>]*?\bhref=\"{base}/c/({_TOKEN})\"[^>]*\bdata-mb-honeypot\b[^>]*>\s*</a>", re.IGNORECASE
    )
    counts = {"pixels": 0, "links": 0}

    def mine(token: str) -> Hit | None:
        try:
            hit = tracker.decode(token)
        except TokenError:
            return None
        return hit if hit.account == account else None

    def drop_pixel(match: re.Match[str]) -> str:
        if mine(match.group(1)) is None:
            return match.group(0)
        counts["pixels"] += 1
        return ""

    def restore_link(match: re.Match[str]) -> str:
        hit = mine(match.group(1))
        if hit is None or hit.url is None:
            return match.group(0)
        counts["links"] += 1
        return hit.url.replace("&", "&amp;").replace('"', "&quot;").replace("'", "&#39;")

    html = pixel.sub(drop_pixel, html)
    html = honeypot.sub(lambda m: "" if mine(m.group(1)) else m.group(0), html)
    html = click.sub(restore_link, html)
    return Preview(html, counts["pixels"], counts["links"])
