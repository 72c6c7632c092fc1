"""Tracking whole MIME messages: rewrite the HTML (and optionally text) bodies, touch nothing else.

``track_message`` deep-copies the message and walks ``multipart/mixed``,
``multipart/alternative`` and ``multipart/related`` (nested to any depth). Each
inline ``text/html`` part (and ``text/plain`` part, when ``rewrite_text`` is
given) is decoded with its own charset and Content-Transfer-Encoding, passed to
the rewriter, and encoded back:

* the charset stays what it was. A part without one is US-ASCII (RFC 2045) and
  becomes UTF-8 only if the rewritten text is no longer ASCII. An HTML part in
  a charset that cannot hold a new character gets it as ``&#NNN;``; a text part
  moves to UTF-8. Bytes that did not decode in the declared charset are carried
  through unchanged (``surrogateescape``).
* quoted-printable stays quoted-printable and base64 stays base64. 7bit and 8bit
  are kept while the body still fits them (ASCII for 7bit; no NUL; no line over
  998 octets, RFC 5322 section 2.1.1); otherwise the part becomes
  quoted-printable, or base64 when that is smaller.
* a part whose rewritten text is unchanged keeps its original bytes.

Never touched: attachments (``Content-Disposition: attachment`` or a filename,
whatever their type), ``message/rfc822`` and other ``message/*`` parts, images
and every other non-text part, ``multipart/signed`` and ``multipart/encrypted``
(a change would break the signature) and any other multipart subtype, parts in
a charset Python does not know or a transfer encoding other than 7bit, 8bit,
binary, quoted-printable and base64, and every header apart from
a rewritten part's Content-Transfer-Encoding and charset and the ``headers``
the caller asks for.
"""

from __future__ import annotations

import codecs
import copy
import re
from collections.abc import Callable, Mapping
from email import base64mime, quoprimime
from email.message import EmailMessage, Message
from email.policy import Policy
from typing import Any, Final

from mailbeacon.core.errors import InvalidDestination
from mailbeacon.core.tokens import check_destination

__all__ = ["list_unsubscribe_headers", "track_message"]

_WALKED: Final = frozenset({"mixed", "alternative", "related"})
_CTES: Final = frozenset({"7bit", "8bit", "binary", "quoted-printable", "base64"})
_MAX_LINE: Final = 998  # octets, without the CRLF (RFC 5322 section 2.1.1)
_QP_LINE: Final = 76  # RFC 2045 section 6.7
_ESCAPED: Final = re.compile("[\udc80-\udcff]+")  # bytes that did not decode, kept by surrogateescape
# Bytes quoted-printable carries as themselves: printable ASCII but "=", and space, tab, CR, LF.
_QP_SAFE: Final = bytes(b for b in range(256) if 32 <= b <= 126 and b != 61) + b" \t\r\n"
_HEADER_NAME: Final = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext
_FOLD_CHUNK: Final = re.compile(r"[ \t]*[^ \t]+|[ \t]+")

Rewriter = Callable[[str], str]


def track_message(
    msg: EmailMessage,
    *,
    rewrite_html: Rewriter,
    rewrite_text: Rewriter | None = None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """Return a copy of ``msg`` with its inline HTML (and text) bodies rewritten.

    ``rewrite_html`` gets the decoded text of each inline ``text/html`` part and
    returns the new text; ``rewrite_text`` does the same for inline
    ``text/plain`` parts, which are left alone when it is None. ``headers`` are
    set on the top-level message, each replacing every existing header of that
    name; ASCII values are written as given (folded at spaces, never turned
    into RFC 2047 encoded-words, which would break a URL in
    ``List-Unsubscribe``). ``msg`` itself is not modified.

    Raises ``ValueError`` for a header name that is not RFC 5322 ``ftext``, a
    value containing CR, LF or NUL (header injection) or a word in it too long
    for one 998-octet line.
    """
    new_headers = [(name, _header(name, value)) for name, value in (headers or {}).items()]
    # Policies are immutable; share them rather than copying one per part.
    memo: dict[int, Any] = {id(part.policy): part.policy for part in msg.walk()}
    tracked: EmailMessage = copy.deepcopy(msg, memo)
    if _track_part(tracked, rewrite_html, rewrite_text) and "MIME-Version" not in tracked:
        tracked["MIME-Version"] = "1.0"  # a new charset or CTE means nothing without it
    for name, value in new_headers:
        del tracked[name]
        tracked[name] = value
    return tracked


def list_unsubscribe_headers(url: str, *, mailto: str | None = None) -> dict[str, str]:
    """The RFC 8058 one-click unsubscribe headers for ``url`` (and ``mailto``).

    Returns ``List-Unsubscribe: <url>`` (``, <mailto:...>`` appended when
    ``mailto`` is given, with or without its ``mailto:`` prefix) and
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. Pass the result as
    ``headers=`` to ``track_message``, which writes the URL unfolded.

    Raises ``InvalidDestination`` unless ``url`` is an https URL with a host,
    and for a URL or address containing whitespace, control characters,
    non-ASCII, ``<``, ``>`` or ``,`` (percent-encode them) or too long to fit on
    one 998-octet header line.
    """
    if not isinstance(url, str) or url[:8].lower() != "https://":
        raise InvalidDestination(
            f"List-Unsubscribe URL must be https, not {url!r:.40}: RFC 8058 one-click unsubscribe "
            "requires an https URI (mail providers refuse to POST anywhere else)"
        )
    uris = [check_destination(_check_uri(url, "List-Unsubscribe URL"))]  # and a host
    if mailto is not None:
        if not isinstance(mailto, str):
            raise InvalidDestination(f"mailto must be a string, not {type(mailto).__name__}")
        address = mailto[7:] if mailto[:7].lower() == "mailto:" else mailto
        if not address or address[0] == "?":
            raise InvalidDestination(f"List-Unsubscribe mailto {mailto!r} has no address")
        uris.append(_check_uri("mailto:" + address, "List-Unsubscribe mailto"))
    return {
        "List-Unsubscribe": ", ".join(f"<{uri}>" for uri in uris),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _check_uri(uri: str, what: str) -> str:
    for char in uri:
        if not (char.isascii() and char.isprintable()) or char in " <>,":
            raise InvalidDestination(
                f"{what} {uri[:60]!r} contains {char!r}; percent-encode it "
                "(a List-Unsubscribe URI may not hold whitespace, control or non-ASCII characters, "
                "'<', '>' or ',')"
            )
    if len(uri) > _MAX_LINE - len("List-Unsubscribe: <>,"):
        raise InvalidDestination(f"{what} is {len(uri)} characters; it must fit on one 998-octet header line")
    return uri


# -- the walk ----------------------------------------------------------------------------------


def _track_part(part: Message, rewrite_html: Rewriter, rewrite_text: Rewriter | None) -> bool:
    """Rewrite ``part`` in place; True if any header that needs MIME-Version changed."""
    if part.get_content_disposition() == "attachment" or part.get_filename() is not None:
        return False
    maintype = part.get_content_maintype()
    if maintype == "multipart":
        payload = part.get_payload()
        if part.get_content_subtype() not in _WALKED or not isinstance(payload, list):
            return False
        changed = False
        for sub in payload:
            if isinstance(sub, Message):
                changed |= _track_part(sub, rewrite_html, rewrite_text)
        return changed
    content_type = part.get_content_type()
    if content_type == "text/html":
        return _rewrite_body(part, rewrite_html, html=True)
    if content_type == "text/plain" and rewrite_text is not None:
        return _rewrite_body(part, rewrite_text, html=False)
    return False


def _rewrite_body(part: Message, rewrite: Rewriter, *, html: bool) -> bool:
    cte_header = part.get("Content-Transfer-Encoding")
    cte = str(cte_header).strip().lower() if cte_header is not None else "7bit"
    charset = part.get_content_charset() or "us-ascii"
    codec = _codec(charset)
    raw = part.get_payload(decode=True)
    if cte not in _CTES or codec is None or not isinstance(raw, bytes):
        return False  # nothing we could write back faithfully: leave the part as it is
    try:
        text = raw.decode(codec, "surrogateescape")
    except UnicodeError:
        return False
    new = rewrite(text)
    if new == text:
        return False
    encoded = _encode(new, charset, codec, html=html)
    if encoded is None:
        return False
    body, new_charset = encoded
    new_cte = _transfer_encoding(body, cte)
    part.set_payload(_transfer_encode(body, new_cte))
    changed = False
    if new_cte != cte:
        if cte_header is None:
            part["Content-Transfer-Encoding"] = new_cte
        else:
            part.replace_header("Content-Transfer-Encoding", new_cte)
        changed = True
    if new_charset != charset:
        if "Content-Type" not in part:
            part["Content-Type"] = part.get_content_type()  # the implicit text/plain, made explicit
        part.set_param("charset", new_charset, replace=True)
        changed = True
    return changed


# -- charsets and transfer encodings -----------------------------------------------------------


def _codec(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None


def _encode(text: str, charset: str, codec: str, *, html: bool) -> tuple[bytes, str] | None:
    """``text`` as bytes, in ``charset`` if at all possible; None if it cannot be written."""
    try:
        return text.encode(codec, "surrogateescape"), charset
    except UnicodeEncodeError:
        pass
    escaped = _ESCAPED.search(text) is not None
    try:
        if codec == "ascii" and not escaped:
            return text.encode("utf-8"), "utf-8"
        if html:  # keep the charset: HTML can say any character as a reference
            pieces, done = [], 0
            for match in _ESCAPED.finditer(text):
                pieces.append(text[done : match.start()].encode(codec, "xmlcharrefreplace"))
                pieces.append(match.group().encode(codec, "surrogateescape"))
                done = match.end()
            pieces.append(text[done:].encode(codec, "xmlcharrefreplace"))
            return b"".join(pieces), charset
        if not escaped:
            return text.encode("utf-8"), "utf-8"
    except UnicodeError:
        pass
    return None  # undecodable bytes and new characters the charset cannot hold: no safe encoding


def _transfer_encoding(body: bytes, cte: str) -> str:
    if cte in ("quoted-printable", "base64", "binary"):
        return cte
    fits = b"\0" not in body and _longest_line(body) <= _MAX_LINE
    if fits and (cte == "8bit" or body.isascii()):
        return cte
    unsafe = len(body.translate(None, _QP_SAFE))
    return "quoted-printable" if 3 * unsafe <= len(body) // 2 else "base64"


def _longest_line(body: bytes) -> int:
    return max(map(len, body.replace(b"\r\n", b"\n").split(b"\n")))


def _transfer_encode(body: bytes, cte: str) -> str:
    if cte == "base64":
        return base64mime.body_encode(body, maxlinelen=_QP_LINE)
    if cte == "quoted-printable":
        return quoprimime.body_encode(body.decode("latin-1"), maxlinelen=_QP_LINE)
    return body.decode("ascii", "surrogateescape")  # how the parser stores 7bit/8bit/binary bodies


# -- headers written as given ------------------------------------------------------------------


def _header(name: str, value: str) -> str:
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"header name {name!r} is not printable ASCII without ':' or spaces")
    if not isinstance(value, str) or any(char in value for char in "\r\n\0"):
        raise ValueError(f"header {name} value {value!r:.60} must be a string without CR, LF or NUL")
    if not value.isascii():
        return value  # the policy writes it as RFC 2047 encoded-words, as it must
    if len(name) + 2 + max(map(len, re.split("[ \t]", value))) > _MAX_LINE:  # words fold() cannot break
        raise ValueError(f"header {name} has a word too long for one 998-octet line")
    return _VerbatimHeader(name, value)


class _VerbatimHeader(str):
    """An ASCII header value the email package writes as it is, folding only at spaces.

    ``email.policy.EmailPolicy`` stores a value that has a matching ``name`` as
    is and serialises it with its ``fold``; the default folding would turn a
    long unbreakable word (a tracking URL) into RFC 2047 encoded-words, which
    no mail client reads back as a URL.
    """

    name: str

    def __new__(cls, name: str, value: str) -> _VerbatimHeader:
        self = super().__new__(cls, value)
        self.name = name
        return self

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (_VerbatimHeader, (self.name, str(self)))

    @property
    def defects(self) -> tuple[()]:
        return ()

    def fold(self, *, policy: Policy) -> str:
        limit = policy.max_line_length or _MAX_LINE
        lines = [self.name + ":"]
        # Every chunk starts with whitespace, so a fold before one is a legal FWS and never
        # leaves a line of only whitespace; a word longer than the limit keeps its own line.
        for chunk in _FOLD_CHUNK.findall(" " + self):
            started = len(lines) > 1 or len(lines[0]) > len(self.name) + 1
            if started and len(lines[-1]) + len(chunk) > limit and chunk.strip():
                lines.append(chunk)
            else:
                lines[-1] += chunk
        return policy.linesep.join(lines) + policy.linesep
