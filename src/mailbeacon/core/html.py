"""Byte-exact HTML rewriting: tracked links and the open pixel.

Only two kinds of change are made: the values of tracked ``href`` attributes are
replaced, and the pixel ``<img>`` is inserted. Every other character of the
input is kept: doctype, Outlook conditional comments, VML, entities,
whitespace, attribute order and quoting, merge tags.

This is a hand-written scanner (``core.html_scan``) on purpose. No HTML library
rewrites an attribute value in place: lxml, html5lib and selectolax all build
a tree and serialise it again, which drops or rewrites the doctype, URL-encodes
merge tags such as ``{{ url }}`` and loses conditional comments. This module
holds the policy: which links are tracked, how a new value is escaped, where
the pixel goes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from mailbeacon.core.html_scan import Href, Scan, browser_url, scan

__all__ = [
    "GMAIL_CLIP_BYTES",
    "PixelPosition",
    "RewriteResult",
    "TrackedLink",
    "honeypot_html",
    "is_trackable",
    "pixel_html",
    "rewrite_html",
]

GMAIL_CLIP_BYTES: Final = 102 * 1024
"""Gmail clips messages whose HTML exceeds about 102 KB behind "[Message clipped]"."""


class PixelPosition(StrEnum):
    """Where the open pixel goes."""

    BODY_START = "body_start"  # right after the first <body ...> start tag (the default)
    END = "end"  # right before the last </body>, or at the very end if there is none
    BOTH = "both"  # both places: two pixels with the same URL


@dataclass(frozen=True, slots=True)
class TrackedLink:
    """One link that ``rewrite_html`` replaced."""

    index: int  # the index passed to click_url (see rewrite_html)
    url: str  # destination as a browser sees it: entities decoded, surrounding whitespace trimmed
    tracked_url: str  # what replaced it
    tag: str  # lower-cased tag name: "a", "area", "v:roundrect", ...


@dataclass(frozen=True, slots=True)
class RewriteResult:
    """The rewritten HTML and what changed in it."""

    html: str
    links: tuple[TrackedLink, ...]
    pixels: int  # how many pixels were inserted (0, 1 or 2)

    @property
    def size(self) -> int:
        """UTF-8 length of ``html`` in bytes (what Gmail's clip limit counts)."""
        return len(self.html.encode("utf-8", "surrogatepass"))

    @property
    def clipped(self) -> bool:
        """Whether Gmail will clip this HTML (``size > GMAIL_CLIP_BYTES``)."""
        return self.size > GMAIL_CLIP_BYTES


# -- the link policy ----------------------------------------------------------

_HTTP: Final = re.compile(r"(?:[Hh][Tt][Tt][Pp][Ss]?:)?//[^/?#\\]")
_PLACEHOLDER: Final = re.compile(
    r"""
      [{}]                                            # {{ x }}, {% x %}, ${x}, {x}: never legal in a URL
    | \*\| | \|\*                                     # *|MERGE|*
    | <% | %>                                         # <%= erb %>
    | %7[Bb]%7[Bb]                                    # {{ after a round of URL-encoding
    | %[A-Za-z_][A-Za-z0-9_.\-]*+%(?![0-9A-Fa-f]{2})  # %unsubscribe_url%, but not the %A9t% of %C3%A9t%C3%A9
    | \[(?<![A-Za-z0-9_\]]\[)[A-Za-z_][A-Za-z0-9_ .\-]*+\]  # [unsubscribe], but not ?filter[size]= or [::1]
    """,
    re.VERBOSE,
)
_PLACEHOLDER_START: Final = re.compile(r"[{}*|<%\[]")  # a cheap first test: most URLs have none of these


def is_trackable(url: str) -> bool:
    """Whether a destination may be replaced by a tracking link.

    ``url`` is what a browser follows (entities decoded, whitespace trimmed).
    Only ``http://``, ``https://`` and protocol-relative ``//`` URLs with a host
    qualify, in any case. Refused: other schemes (``mailto:``, ``tel:``,
    ``javascript:``, ``data:``, ...), ``#anchors`` and relative links, URLs
    holding a control or other non-printable character, and URLs holding a
    merge tag or template placeholder (``{{ }}``, ``{% %}``, ``${}``, ``*|X|*``,
    ``%name%``, ``[name]``, ``<%= %>``), which would otherwise be frozen into
    the token before the template engine fills them in.
    """
    return (
        _HTTP.match(url) is not None
        and url.isprintable()  # no CR, LF, NUL, lone surrogates, ...
        and (_PLACEHOLDER_START.search(url) is None or _PLACEHOLDER.search(url) is None)
    )


# -- output -------------------------------------------------------------------

_PIXEL_STYLE: Final = (
    "display:block;width:1px;height:1px;max-width:1px;max-height:1px;"
    "border:0;margin:0;padding:0;overflow:hidden;opacity:0"
)
_UNSAFE_UNQUOTED: Final = re.compile(r"[\t\n\f\r \"'=<>`]")  # what ends or breaks an unquoted value
_XML_OR_DOCTYPE: Final = re.compile(r"<\?xml[\t\n\r ]|<!doctype", re.IGNORECASE)


def pixel_html(url: str, *, xhtml: bool = False) -> str:
    """The open-tracking ``<img>`` that ``rewrite_html`` inserts (``xhtml``: close it with ``/>``)."""
    src = _quote(url, '"')
    end = " />" if xhtml else ">"
    return f'<img src="{src}" width="1" height="1" alt="" border="0" style="{_PIXEL_STYLE}"{end}'


# Hidden from people every way mail clients honour (CSS, Outlook's mso-hide, no text, out of
# the tab order and the accessibility tree), so that only machines follow it.
_HONEYPOT_STYLE: Final = (
    "display:none!important;mso-hide:all;font-size:0;line-height:0;max-height:0;overflow:hidden"
)


def honeypot_html(url: str) -> str:
    """The hidden link ``rewrite_html`` inserts for ``honeypot_url``: only machines follow it."""
    href = _quote(url, '"')
    return (
        f'<a href="{href}" style="{_HONEYPOT_STYLE}" aria-hidden="true" tabindex="-1" data-mb-honeypot></a>'
    )


def _quote(value: str, quote: str) -> str:
    """``value`` escaped for an attribute in ``quote`` ('"', "'" or "" for unquoted)."""
    value = value.replace("&", "&amp;")
    if quote == '"':
        return value.replace('"', "&quot;")
    if quote == "'":
        return value.replace("'", "&#39;")
    return value


def _looks_like_xhtml(html: str) -> bool:
    """Whether ``html`` has an XML declaration or an XHTML doctype (the first one found)."""
    m = _XML_OR_DOCTYPE.search(html)
    if m is None:
        return False
    end = html.find(">", m.end())
    return m.group()[1] == "?" or "xhtml" in html[m.end() : end if end >= 0 else len(html)].lower()


def rewrite_html(
    html: str,
    *,
    click_url: Callable[[str, int], str | None] | None = None,
    pixel_url: str | None = None,
    pixel_position: PixelPosition | str = PixelPosition.BODY_START,
    honeypot_url: str | None = None,
) -> RewriteResult:
    """Track the links in ``html`` and insert the open pixel, changing nothing else.

    Links are the ``href`` of ``<a>``, ``<area>`` and Outlook VML elements
    (``<v:roundrect>``, any ``v:`` tag) whose destination passes
    :func:`is_trackable` and whose tag carries no ``data-notrack`` or
    ``data-no-track`` attribute. Each such link, in document order, gets the
    next ``index`` (0, 1, 2, ...) and ``click_url(destination, index)`` is
    called: a string replaces the value (escaped for its quoting), None leaves
    the link as it was, and its index is not reused.

    ``pixel_url``, when given, is inserted as :func:`pixel_html` (closed with
    ``/>`` if the document starts with ``<?xml`` or has an XHTML doctype) at
    ``pixel_position``: right after the first ``<body ...>`` tag, right before
    the last ``</body>``, or both. Without such a tag it goes at the end (or
    just before an unterminated tag or comment that runs to the end).

    Malformed HTML never raises; the scan stops where a browser would see the
    rest as one unterminated construct, and leaves that part unchanged.

    ``honeypot_url``, when given, is inserted as :func:`honeypot_html` right after
    ``<body ...>`` (before a pixel there); it is not one of the result's ``links``.
    """
    position = PixelPosition(pixel_position)
    if click_url is None and pixel_url is None and honeypot_url is None:
        return RewriteResult(html, (), 0)
    found = scan(html, links=click_url is not None)
    edits: list[tuple[int, int, str]] = []
    links: list[TrackedLink] = []
    if click_url is not None:
        _track_links(html, found.links, click_url, edits, links)
    if honeypot_url is not None:
        at = found.body_end if found.body_end >= 0 else found.stop
        edits.append((at, at, honeypot_html(honeypot_url)))
        edits.sort(key=lambda edit: edit[0])
    places = _pixel_places(found, position) if pixel_url is not None else []
    if pixel_url is not None:
        pixel = pixel_html(pixel_url, xhtml=_looks_like_xhtml(html))
        edits += ((at, at, pixel) for at in places)
        edits.sort(key=lambda edit: edit[0])  # stable: a body-start pixel stays before an end pixel
    return RewriteResult(_apply(html, edits), tuple(links), len(places))


def _pixel_places(found: Scan, position: PixelPosition) -> list[int]:
    """Where the pixels go. Without a body tag: the end, or before what runs to the end unterminated."""
    places = []
    if position is not PixelPosition.END:
        places.append(found.body_end if found.body_end >= 0 else found.stop)
    if position is not PixelPosition.BODY_START:
        places.append(found.end_body if found.end_body >= 0 else found.stop)
    return places


def _track_links(
    html: str,
    found: list[tuple[str, Href]],
    click_url: Callable[[str, int], str | None],
    edits: list[tuple[int, int, str]],
    links: list[TrackedLink],
) -> None:
    index = 0
    for tag, href in found:
        url = browser_url(html[href.start : href.end])
        if not is_trackable(url):
            continue
        tracked = click_url(url, index)
        if tracked is not None:
            quote = href.quote
            if not quote and (not tracked or _UNSAFE_UNQUOTED.search(tracked)):
                quote = '"'
            value = _quote(tracked, quote)
            if quote != href.quote:
                value = f"{quote}{value}{quote}"
            edits.append((href.start, href.end, value))
            links.append(TrackedLink(index, url, tracked, tag))
        index += 1


def _apply(html: str, edits: list[tuple[int, int, str]]) -> str:
    if not edits:
        return html
    pieces: list[str] = []
    done = 0
    for start, end, text in edits:
        pieces += (html[done:start], text)
        done = end
    pieces.append(html[done:])
    return "".join(pieces)
