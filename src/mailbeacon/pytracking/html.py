"""``adapt_html``: pytracking2's HTML tracking, on mailbeacon's byte-exact rewriter.

pytracking2 parses the email with lxml and serialises the tree again, which
drops the doctype, re-escapes text and rewrites markup that email clients are
picky about. Here every byte outside the rewritten ``href`` values and the
added pixel is kept as it was (:func:`mailbeacon.core.html.rewrite_html`).
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Final

from mailbeacon.core.html import PixelPosition, rewrite_html
from mailbeacon.pytracking.tracking import Configuration, get_configuration

__all__ = ["DEFAULT_ATTRIBUTES", "adapt_html"]

# Exported as in pytracking2 (which does not use it either).
DEFAULT_ATTRIBUTES: Final[dict[str, str]] = {"border": "0", "width": "0", "height": "0", "alt": ""}

# Where an HTML document may declare its charset: <meta charset=...> or
# <meta http-equiv="Content-Type" content="text/html; charset=...">. Browsers
# look in the first 1024 bytes; emails put <head> first too, so 4 KB is ample.
_SNIFF_BYTES: Final = 4096
_META_CHARSET: Final = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def adapt_html(
    html_text: str | bytes,
    extra_metadata: dict[str, Any] | None,
    click_tracking: bool = True,
    open_tracking: bool = True,
    configuration: Configuration | None = None,
    **kwargs: Any,
) -> str:
    """Return ``html_text`` with its links tracked and a tracking pixel at the end of ``<body>``.

    Links are the ``href`` of ``<a>``, ``<area>`` and Outlook VML elements whose
    destination is ``http://``, ``https://`` or ``//`` (see
    :func:`mailbeacon.core.html.is_trackable`: links holding merge tags such as
    ``{{ url }}`` or ``*|X|*``, and tags with ``data-notrack``, are left alone).
    Each becomes a click-tracking URL carrying the destination and
    ``extra_metadata``. The pixel is an ``<img>`` whose ``src`` is an
    open-tracking URL carrying ``extra_metadata``, placed just before
    ``</body>``. Nothing else in the document changes.

    :param html_text: The HTML, as ``str`` or ``bytes``. Bytes are decoded with
        the charset of a byte-order mark or of a ``<meta>`` charset declaration,
        else UTF-8; encode the result in that same charset.
    :param extra_metadata: A JSON-serialisable dict embedded in every link.
    :param click_tracking: Whether to rewrite links.
    :param open_tracking: Whether to add the pixel.
    :param configuration: An optional Configuration instance.
    :param kwargs: Configuration settings that override ``configuration``'s.
    """
    # One configuration for the whole document (pytracking2 built one per link).
    config = get_configuration(configuration, kwargs)
    text = html_text if isinstance(html_text, str) else _decode(html_text)

    def click_url(destination: str, _index: int) -> str:
        # Only destinations that pass mailbeacon.core.html.is_trackable get here.
        return config.get_click_tracking_url(destination, extra_metadata)

    result = rewrite_html(
        text,
        click_url=click_url if click_tracking else None,
        pixel_url=config.get_open_tracking_url(extra_metadata) if open_tracking else None,
        pixel_position=PixelPosition.END,
    )
    return result.html


def _decode(data: bytes) -> str:
    """Decode an HTML document: BOM, then ``<meta>`` charset, then UTF-8 (strict)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    return data.decode(_declared_charset(data[:_SNIFF_BYTES]) or "utf-8")


def _declared_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head)
    if match is None:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    # A <meta> readable as ASCII cannot be UTF-16/32 (the HTML standard reads it as UTF-8).
    if name.startswith(("utf-16", "utf-32")):
        return None
    return name
