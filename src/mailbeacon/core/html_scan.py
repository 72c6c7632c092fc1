"""The HTML scanner behind ``core.html``: where the links, ``<body>`` and ``</body>`` are.

It follows the HTML tokenizer where that decides what is a link:

- A start or end tag runs to the ``>`` outside its quoted attribute values, so
  a ``<a href>`` inside another tag's ``title="..."`` is not a link. Quotes
  delimit a value only right after ``name =``; elsewhere they are ordinary
  characters of a name or an unquoted value, as in a browser.
- Comments end at ``-->`` (``<!-->`` and ``--!>`` included); ``<!...>`` and
  ``<?...>`` end at ``>``.
- The contents of ``<script>``, ``<style>``, ``<textarea>``, ``<title>``,
  ``<xmp>``, ``<iframe>``, ``<noembed>`` and ``<noframes>`` run to their end
  tag (any case).
- The contents of a downlevel-hidden conditional comment (``<!--[if mso]> ...
  <![endif]-->``) are scanned as HTML, because Outlook renders them; what
  follows ``<!--[if !mso]><!-->`` is ordinary HTML already.
- An unterminated tag, quoted value, comment or raw-text element runs to the
  end of the input, as in a browser, and so does ``<plaintext>``: the scan
  stops there.

One compiled expression consumes everything that needs no action (text, other
tags whole with their quoted values, comments) in a single call and stops at
the next construct that does: a link tag, ``<body``, ``</body``, a conditional
comment, or the place where the scan must stop. Every repetition in it is
possessive, so nothing backtracks, and a construct that fails to match ends the
scan: the time is linear in the input. Case-insensitive names are spelled as
character classes (``[Bb][Oo][Dd][Yy]``), which ``re`` matches faster than
``(?i:body)``. Most of the time goes to attributes (about 50 ns each in
CPython's ``re``); a scan that skipped them could not tell a tag's end from a
">" inside a quoted value. ``tests/core/test_html.py`` checks the expression
against a character-at-a-time reading of the tokenizer.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from html import unescape
from html.entities import html5
from typing import Final, NamedTuple

__all__ = ["Href", "Scan", "browser_url", "compiled_scan", "pure_scan", "scan"]

_SP: Final = r"\t\n\f\r "  # HTML whitespace; not \s: "\xa0" and friends are ordinary characters in HTML
_END: Final = rf"[{_SP}/>]"  # what ends a tag name
_RAW_TEXT: Final = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_SPECIAL: Final = ("a", "area", "body", "plaintext", *_RAW_TEXT)  # start tags the scan acts on


def _ci(word: str) -> str:
    """``word``, ASCII letters matched in either case."""
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


def _ordinary_start() -> str:
    """The first letter of a tag name that is not in _SPECIAL and does not start with "v:".

    "t" comes first (td, tr, table and tbody are most of an e-mail's tags), then
    the letters no special name starts with, then the others.
    """
    firsts = sorted({name[0] for name in _SPECIAL} | {"v"}, key=lambda c: (c != "t", c))
    others = "".join(c + c.upper() for c in string.ascii_lowercase if c not in firsts)
    alternatives = []
    for first in firsts:
        banned = [_ci(name[1:]) + _END for name in _SPECIAL if name[0] == first]
        banned += [":"] if first == "v" else []
        alternatives.append(f"{_ci(first)}(?!{'|'.join(banned)})")
    alternatives.insert(1, f"[{others}]")
    return "(?:" + "|".join(alternatives) + ")"


# The attributes of a tag, up to its ">". Each is optional "/" and whitespace, a
# name (which may start with "=" or hold a quote), then "=" and a double-quoted,
# single-quoted or unquoted value (empty before ">"), or no "=" at all. A quote
# left open makes the whole tag fail to match, which ends the scan. The common
# name="value" is tried before the general form.
_VALUE: Final = rf"""(?: "[^"]*+" | '[^']*+' | (?!["'])[^{_SP}>]*+ )"""
_ATTRS: Final = rf"""(?:
    [{_SP}/]*+ [^{_SP}/>][^{_SP}/>=]*+
    (?: ={_VALUE} | [{_SP}]*+ (?: =[{_SP}]*+{_VALUE} | (?!=) ) )
)*+ [{_SP}/]*+"""
_IF: Final = r"!--\[[Ii][Ff][^\]<>]*+\]>"  # after "<": the start of a conditional comment
_LINK_TAG: Final = rf"(?={_ci('a')}{_END}|{_ci('area')}{_END}|[Vv]:)[A-Za-z][^{_SP}/>]*+"
_TAG_REST: Final = rf"[^{_SP}/>]*+(?:>|{_ATTRS}>)"  # a tag after its first letter; many end right there
_RAW_ELEMENT: Final = "|".join(  # after "<": a raw-text element, up to its end tag
    rf"(?={_ci(name)}{_END})[A-Za-z]{_TAG_REST}[^<]*+(?:<(?!/{_ci(name)}{_END})[^<]*+)*+(?=</{_ci(name)}{_END})"
    for name in _RAW_TEXT
)

_NEXT: Final = re.compile(
    rf"""
    (?: [^<]*+ < (?:                                      # needs no action, consumed in one call:
        /(?: (?!{_ci("body")}{_END})[A-Za-z]{_TAG_REST}   #   end tag (first: the cheapest to rule out)
           | (?:[^A-Za-z>][^>]*+)?> )                     #   </>, bogus comment
      | {_ordinary_start()}{_TAG_REST}                    #   start tag
      | {_IF}<!---{{0,2}}>                                #   downlevel-revealed: <!--[if !mso]><!-->
      | !--(?!\[[Ii][Ff][^\]<>]*+\]>)(?:-?>|(?:[^-]++|-(?!-!?>))*+--!?>)   # comment
      | !(?!--)[^>]*+> | \?[^>]*+>                        #   doctype, <![endif]-->, other bogus comments
      | {_RAW_ELEMENT}                                    #   <script>... up to its end tag
      | (?![A-Za-z!?/])                                   #   a "<" that starts nothing is text
    ) )*+
    [^<]*+
    (?:
        (?P<cond><{_IF})                                  # downlevel-hidden conditional comment
      | (?P<link><(?P<tag>{_LINK_TAG})(?P<attrs>{_ATTRS})>)  # a, area, v:...
      | (?P<body><{_ci("body")}(?={_END}){_ATTRS}>)
      | (?P<endbody></{_ci("body")}(?={_END}){_ATTRS}>)
      | (?P<stop><|\Z)                                    # unterminated construct, <plaintext>, or the end
    )
    """,
    re.VERBOSE,
)

# Inside attribute text that _ATTRS has matched: the attributes before the first
# href, then its value. No match: no href, or the first one has no value.
_FIRST_HREF: Final = re.compile(
    rf"""(?:
        [{_SP}/]*+ (?!{_ci("href")}(?:[{_SP}/>=]|\Z)) [^{_SP}/>][^{_SP}/>=]*+
        (?: ={_VALUE} | [{_SP}]*+ (?: =[{_SP}]*+{_VALUE} | (?!=) ) )
    )*+
    [{_SP}/]*+ {_ci("href")} [{_SP}]*+ = [{_SP}]*+
    (?: "(?P<dq>[^"]*+)" | '(?P<sq>[^']*+)' | (?P<uq>(?!["'])[^{_SP}>]*+) )""",
    re.VERBOSE,
)
_QUOTES: Final = {"dq": '"', "sq": "'", "uq": ""}
_MAYBE_OPT_OUT: Final = re.compile(
    r"-[Nn][Oo]-?[Tt][Rr][Aa][Cc][Kk]"
)  # starts with a literal: fast to search
_NAME: Final = re.compile(rf"""[^{_SP}/>][^{_SP}/>=]*+(?:[{_SP}]*+={_VALUE})?""", re.VERBOSE)
_OPT_OUT: Final = frozenset({"data-notrack", "data-no-track"})


class Href(NamedTuple):
    """Where an ``href`` value sits: its span without the quotes, and its quote."""

    start: int
    end: int
    quote: str  # '"', "'" or "" (unquoted)


class Scan(NamedTuple):
    """What the scan found."""

    links: list[tuple[str, Href]]  # (lower-cased tag, first href) of link tags that did not opt out
    body_end: int  # just after the first <body ...> outside comments, or -1
    end_body: int  # at the last </body> outside comments, or -1
    stop: int  # where the scan ended: len(html), or the start of what runs to the end unterminated


def pure_scan(html: str, *, links: bool = True) -> Scan:
    """Scan ``html`` once; with ``links=False`` only ``<body>`` and ``</body>`` are reported.

    The reference implementation; ``scan`` is the compiled one when it is built.
    """
    found: list[tuple[str, Href]] = []
    body_end = end_body = -1
    hidden_until = -1  # where the current downlevel-hidden conditional comment ends ("-->")
    pos = 0
    while True:
        m = _NEXT.match(html, pos)
        assert m is not None  # the last alternative matches anywhere
        kind, pos = m.lastgroup, m.end()
        if kind == "link":
            if links and (href := _first_href(html, *m.span("attrs"))) is not None:
                found.append((_ascii_lower(m["tag"]), href))
        elif kind == "cond":
            if pos > hidden_until:  # before it, the next "-->" is still hidden_until: no rescan
                hidden_until = html.find("-->", pos)
                hidden_until = len(html) if hidden_until < 0 else hidden_until
        elif kind == "body":
            if body_end < 0 and pos > hidden_until:
                body_end = pos
        elif kind == "endbody":
            if m.start(kind) > hidden_until:
                end_body = m.start(kind)
        else:
            return Scan(found, body_end, end_body, m.start("stop"))


def _first_href(html: str, start: int, end: int) -> Href | None:
    """The first ``href`` of a tag (browsers ignore repeats), or None if absent or opted out."""
    m = _FIRST_HREF.match(html, start, end)
    if m is None or (_MAYBE_OPT_OUT.search(html, start, end) and _opted_out(html, start, end)):
        return None
    kind = m.lastgroup
    assert kind is not None
    return Href(*m.span(kind), _QUOTES[kind])


def _opted_out(html: str, start: int, end: int) -> bool:
    """Whether a tag has a ``data-notrack`` or ``data-no-track`` attribute (any case, any value)."""
    for m in _NAME.finditer(html, start, end):
        name = m.group().partition("=")[0].rstrip("\t\n\f\r ")
        if _ascii_lower(name) in _OPT_OUT:
            return True
    return False


def _ascii_lower(name: str) -> str:
    # HTML lower-cases ASCII letters only: "\u212a".lower() == "k" must not make a name match.
    return name.lower() if name.isascii() else name


# -- the optional compiled scanner ----------------------------------------------
# core/_speedups.pyx (Cython) reads the input exactly as pure_scan does, about
# ten times faster; tests/core/test_speedups.py holds the two to equal results.
# Without a C compiler at install time it is not built and pure_scan serves.
# MAILBEACON_PURE_PYTHON=1 blocks its import (mailbeacon/_pure.py).
_compiled: Callable[..., tuple[list[tuple[str, Href]], int, int, int]] | None
try:
    from mailbeacon.core._speedups import scan as _compiled
except ImportError:
    _compiled = None


def _compiled_scan(html: str, *, links: bool = True) -> Scan:
    """``pure_scan``, computed by the compiled module."""
    assert _compiled is not None
    return Scan(*_compiled(html, links, Href, _opted_out))


compiled_scan: Final = None if _compiled is None else _compiled_scan
scan: Final = pure_scan if compiled_scan is None else compiled_scan


# -- what a browser follows -----------------------------------------------------

_CHARREF: Final = re.compile(r"&(?:#[0-9]++;?|#[xX][0-9a-fA-F]++;?|([A-Za-z][A-Za-z0-9]*+)(;?))")
_LEGACY: Final = frozenset(name for name in html5 if not name.endswith(";"))
_LEGACY_MAX: Final = max(map(len, _LEGACY))
# What the URL parser trims from both ends, but NUL: the tokenizer has made that
# U+FFFD, which is not trimmed; kept as NUL, it makes is_trackable say no.
_C0_AND_SPACE: Final = "".join(map(chr, range(1, 0x21)))


def browser_url(raw: str) -> str:
    """The URL a browser follows for the attribute value ``raw``: references decoded, ends trimmed."""
    if "&" not in raw:
        decoded = raw
    elif raw.count("&") == raw.count("&amp;"):  # the usual case, without a call per reference
        decoded = raw.replace("&amp;", "&")
    else:
        decoded = _CHARREF.sub(_decode_reference, raw)
    return decoded.strip(_C0_AND_SPACE)


def _decode_reference(m: re.Match[str]) -> str:
    """One character reference, decoded as the HTML tokenizer does inside an attribute value."""
    ref = m.group()
    name, semicolon = m.group(1, 2)
    if name is None or (semicolon and name + ";" in html5):
        return unescape(ref)
    # Without ";" only a legacy name (amp, lt, copy, reg, ...) decodes, and in an
    # attribute not when a letter, digit or "=" follows: "?a=1&region=eu" keeps "&reg".
    for size in range(min(len(name), _LEGACY_MAX), 1, -1):
        if name[:size] in _LEGACY:
            if size < len(name) or m.string[m.end() : m.end() + 1] == "=":
                return ref
            return html5[name] + semicolon
    return ref
