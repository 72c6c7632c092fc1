"""The fixed responses of the tracking endpoints, built once."""

from __future__ import annotations

import html
from typing import Final

__all__ = ["GIF", "PIXEL_HEADERS", "page"]

# The smallest transparent GIF (43 bytes), the same bytes nginx's empty_gif serves.
GIF: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

# Every cache between the mail client and us must come back for each view.
_NO_CACHE: Final = [
    (b"cache-control", b"no-store, no-cache, must-revalidate, private"),
    (b"pragma", b"no-cache"),
    (b"expires", b"Thu, 01 Jan 1970 00:00:00 GMT"),
]
PIXEL_HEADERS: Final = [
    (b"content-type", b"image/gif"),
    (b"content-length", str(len(GIF)).encode()),
    *_NO_CACHE,
]
NO_CACHE: Final = _NO_CACHE
# A redirect must not leak the tracking URL (and its token) to the destination.
REDIRECT_HEADERS: Final = [(b"referrer-policy", b"no-referrer"), *_NO_CACHE]

_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32em;margin:4em auto;padding:0 1em;color:#222}}
button{{font:inherit;padding:.5em 1.2em}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body_html: str) -> bytes:
    """A small self-contained HTML page; ``title`` is escaped, ``body_html`` is trusted markup."""
    return _PAGE.format(title=html.escape(title), body=body_html).encode("utf-8")


def html_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
        *_NO_CACHE,
    ]


NOT_FOUND: Final = page(
    "Link not found",
    "<p>This link is not valid, or it has expired. "
    "Nothing was recorded and you have not been redirected.</p>",
)
UNSUBSCRIBE_FORM: Final = page(
    "Unsubscribe",
    '<p>Stop receiving these messages?</p><form method="post">'
    '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
    "<button type=submit>Unsubscribe</button></form>",
)
UNSUBSCRIBED: Final = page("You are unsubscribed", "<p>You will not receive these messages any more.</p>")
BAD_UNSUBSCRIBE: Final = page(
    "Unsubscribe",
    "<p>An unsubscribe request must be a POST with the body "
    "<code>List-Unsubscribe=One-Click</code> (RFC 8058).</p>",
)
METHOD_NOT_ALLOWED: Final = page("Method not allowed", "<p>Tracking links answer GET and HEAD.</p>")

# Built once: the hot path serves these lists as they are.
NOT_FOUND_HEADERS: Final = html_headers(NOT_FOUND)
UNSUBSCRIBE_FORM_HEADERS: Final = html_headers(UNSUBSCRIBE_FORM)
REDIRECT_FIXED_HEADERS: Final = [(b"content-length", b"0"), *REDIRECT_HEADERS]
