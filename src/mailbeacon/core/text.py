"""Click tracking for bare URLs in plain text (text/plain parts, SMS, push copy).

People write links in plain text loosely: at the end of a sentence, in
parentheses, inside ``<...>`` as RFC 3986 Appendix C suggests. A URL here starts
at ``http://`` or ``https://`` (any case, not glued to a preceding word) and runs
to the first whitespace, ``<``, ``>`` or ``"``. Then, unless the URL sits inside
``<...>``, trailing ``. , ; : ! ? '`` are dropped, and so is a closing ``)`` or
``]`` that has no opening partner inside the URL::

    See https://a.example/x.              ->  https://a.example/x
    (docs: https://a.example/wiki/Foo_(bar))  ->  https://a.example/wiki/Foo_(bar)
    <https://a.example/x.>                ->  https://a.example/x.

A URL that ``is_trackable`` refuses is left exactly as it is: one holding a
merge tag or placeholder (tracking it would freeze the placeholder into the
token), a control character, or a lone surrogate from undecodable bytes. The
check also runs on the URL before trimming, so a trim cannot cut a marker like
``*|EMAIL|*`` in half and make what is left look trackable.

Every character outside the replaced URLs is kept as it was. The scan is one
regular expression with no nested repetition plus a linear trim, so the time is
linear in the input, and no input makes it raise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final

from mailbeacon.core.html import TrackedLink, is_trackable

__all__ = ["rewrite_text_links"]

_TAG: Final = "text"

# A scheme not glued to a word before it (so "xhttps://" and "svn+https://" are
# not URLs to us), then everything up to whitespace or a character that cannot
# be in a URL written in mail. One character class, greedy: no backtracking.
_URL: Final = re.compile(r"(?<![\w+.\-])https?://[^\s<>\"]*", re.IGNORECASE)
_TRAILING: Final = frozenset(".,;:!?'")
_CLOSERS: Final = {")": "(", "]": "["}


def _trackable_urls(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of every URL in ``text`` that may be tracked, in order."""
    for match in _URL.finditer(text):
        start, end = match.span()
        raw = match.group()
        if not (start and text[start - 1] == "<" and text[end : end + 1] == ">"):
            end = start + _trim(raw)
        if is_trackable(text[start:end]) and (end == match.end() or is_trackable(raw)):
            yield start, end


def _trim(url: str) -> int:
    """Length of ``url`` without trailing sentence punctuation and unbalanced closers."""
    end = len(url)
    balance = {closer: url.count(closer) - url.count(opener) for closer, opener in _CLOSERS.items()}
    while end:
        last = url[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in balance and balance[last] > 0:
            balance[last] -= 1
            end -= 1
        else:
            break
    return end


def rewrite_text_links(
    text: str,
    click_url: Callable[[str, int], str | None],
    *,
    start_index: int = 0,
) -> tuple[str, tuple[TrackedLink, ...]]:
    """Replace each trackable URL in ``text`` with ``click_url(url, index)``.

    ``index`` counts the trackable URLs from ``start_index``, in order, whether
    or not ``click_url`` tracks them. When ``click_url`` returns None the URL is
    kept as it was. Returns the new text and the links that were replaced
    (``tag="text"``); every other character is unchanged.
    """
    pieces: list[str] = []
    links: list[TrackedLink] = []
    done = 0
    index = start_index
    for start, end in _trackable_urls(text):
        url = text[start:end]
        tracked = click_url(url, index)
        if tracked is not None:
            pieces += (text[done:start], tracked)
            done = end
            links.append(TrackedLink(index=index, url=url, tracked_url=tracked, tag=_TAG))
        index += 1
    if not links:
        return text, ()
    pieces.append(text[done:])
    return "".join(pieces), tuple(links)
