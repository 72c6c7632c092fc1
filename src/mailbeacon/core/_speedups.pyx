# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Optional compiled accelerator for ``core.html_scan.scan`` (Cython 3).

``html_scan.pure_scan`` is the reference: this module reads the input exactly as
its expression ``_NEXT`` does (and ``_FIRST_HREF`` for a link's first href), one
regex construct per C function, each returning where the construct ends or -1
when it does not match. Every repetition in those expressions is possessive and
each alternation is tried in order, so a match is a single left-to-right walk:
no backtracking here either, and the time stays linear.

``tests/core/test_speedups.py`` checks that both give equal results on the same
inputs (corpus, hypothesis, malformed and 5 MB inputs). The characters are read
straight from the string's storage (1, 2 or 4 bytes a character), specialised
for each width; memchr finds "<" and quotes in the usual 1-byte case.
"""

from libc.string cimport memchr

cdef extern from "Python.h":
    int PyUnicode_KIND(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    int PyUnicode_1BYTE_KIND
    int PyUnicode_2BYTE_KIND

ctypedef unsigned char ucs1
ctypedef unsigned short ucs2
ctypedef unsigned int ucs4

ctypedef fused text_t:
    ucs1
    ucs2
    ucs4


cdef inline bint _sp(ucs4 c) noexcept nogil:
    return c == 32 or c == 9 or c == 10 or c == 12 or c == 13  # HTML whitespace: space \t \n \f \r


cdef inline bint _end(ucs4 c) noexcept nogil:  # what ends a tag name
    return _sp(c) or c == 47 or c == 62  # "/" ">"


cdef inline bint _alpha(ucs4 c) noexcept nogil:
    return 97 <= (c | 32) <= 122  # only A-Z and a-z land in a-z when bit 5 is set


cdef inline Py_ssize_t _find(text_t *p, Py_ssize_t i, Py_ssize_t n, ucs4 c) noexcept nogil:
    """Index of the first ``c`` in p[i:n], or -1."""
    cdef const void *hit
    if text_t is ucs1:
        if i >= n:
            return -1
        hit = memchr(p + i, <int>c, <size_t>(n - i))
        return -1 if hit == NULL else <Py_ssize_t>(<const ucs1 *>hit - p)
    else:
        while i < n:
            if p[i] == c:
                return i
            i += 1
        return -1


cdef inline bint _word(text_t *p, Py_ssize_t i, Py_ssize_t n, const char *word, Py_ssize_t size) noexcept nogil:
    """Whether p[i:] starts with the lower-case ASCII ``word``, its letters in either case."""
    cdef Py_ssize_t k
    cdef ucs4 c, w
    if i + size > n:
        return False
    for k in range(size):
        c = p[i + k]
        w = <ucs4>word[k]
        if 97 <= w <= 122:
            c = c | 32
        if c != w:
            return False
    return True


cdef inline bint _word_end(text_t *p, Py_ssize_t i, Py_ssize_t n, const char *word, Py_ssize_t size) noexcept nogil:
    """``word`` (any case) at ``i``, followed by a character that ends a tag name (``word(?=END)``)."""
    return _word(p, i, n, word, size) and i + size < n and _end(p[i + size])


cdef inline Py_ssize_t _value(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """_VALUE at ``i``: "..." | '...' | unquoted (possibly empty); -1 for a quote left open."""
    cdef Py_ssize_t close
    cdef ucs4 c
    if i < n:
        c = p[i]
        if c == 34 or c == 39:  # " '
            close = _find(p, i + 1, n, c)
            return -1 if close < 0 else close + 1
    while i < n and not (_sp(p[i]) or p[i] == 62):
        i += 1
    return i


cdef inline Py_ssize_t _attribute(text_t *p, Py_ssize_t i, Py_ssize_t n, bint before_href) noexcept nogil:
    """One repetition of _ATTRS (or of _FIRST_HREF's loop when ``before_href``) at ``i``; -1 if none.

    ``[SP/]*+ [^SP/>][^SP/>=]*+ (?: =VALUE | [SP]*+ (?: =[SP]*+VALUE | (?!=) ) )``, and with
    ``before_href`` the name must not be ``href`` followed by ``[SP/>=]`` or the end.
    """
    cdef Py_ssize_t j
    cdef ucs4 c
    while i < n and (_sp(p[i]) or p[i] == 47):
        i += 1
    if i >= n:
        return -1
    c = p[i]
    if _sp(c) or c == 47 or c == 62:
        return -1
    if before_href and _word(p, i, n, b"href", 4) and (i + 4 == n or _end(p[i + 4]) or p[i + 4] == 61):
        return -1
    i += 1
    while i < n:
        c = p[i]
        if _sp(c) or c == 47 or c == 62 or c == 61:
            break
        i += 1
    if i < n and p[i] == 61:  # "=": the value follows at once, or (only if that fails) after spaces
        j = _value(p, i + 1, n)
        if j >= 0:
            return j
        j = i + 1
        while j < n and _sp(p[j]):
            j += 1
        return _value(p, j, n)
    j = i
    while j < n and _sp(p[j]):
        j += 1
    if j < n and p[j] == 61:
        j += 1
        while j < n and _sp(p[j]):
            j += 1
        return _value(p, j, n)
    return j


cdef inline Py_ssize_t _attrs(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """_ATTRS at ``i``: where the attributes end (never fails; the caller checks for ">")."""
    cdef Py_ssize_t j = _attribute(p, i, n, False)
    while j >= 0:
        i = j
        j = _attribute(p, i, n, False)
    while i < n and (_sp(p[i]) or p[i] == 47):
        i += 1
    return i


cdef inline Py_ssize_t _tag_rest(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """_TAG_REST at ``i`` (just after a tag name's first letter): the end of the tag after ">", or -1."""
    cdef ucs4 c
    while i < n:
        c = p[i]
        if _sp(c) or c == 47 or c == 62:
            break
        i += 1
    if i < n and p[i] == 62:
        return i + 1
    i = _attrs(p, i, n)
    return i + 1 if i < n and p[i] == 62 else -1


cdef inline Py_ssize_t _conditional(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """_IF at ``i`` (just after "<"): ``!--[if ...]>``; where it ends, or -1."""
    if not (_word(p, i, n, b"!--[if", 6)):
        return -1
    i += 6
    while i < n and p[i] != 93 and p[i] != 60 and p[i] != 62:  # [^\]<>]
        i += 1
    return i + 2 if i + 1 < n and p[i] == 93 and p[i + 1] == 62 else -1


cdef inline Py_ssize_t _comment_end(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """After "<!--" (not a conditional): ``-?>`` or up to the first ``--!?>``; where it ends, or -1."""
    if i < n and p[i] == 62:
        return i + 1
    if i + 1 < n and p[i] == 45 and p[i + 1] == 62:
        return i + 2
    while True:
        i = _find(p, i, n, 45)
        if i < 0 or i + 2 >= n:
            return -1
        if p[i + 1] == 45:
            if p[i + 2] == 62:
                return i + 3
            if p[i + 2] == 33 and i + 3 < n and p[i + 3] == 62:
                return i + 4
        i += 1


# Raw-text elements (their contents run to their end tag) and the other start tags the scan acts on.
cdef const char *_RAW[8]
cdef Py_ssize_t _RAW_SIZE[8]
_RAW[:] = [b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes"]
_RAW_SIZE[:] = [6, 5, 8, 5, 3, 6, 7, 8]


cdef inline int _raw_element(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Which raw-text element starts at ``i`` (its name followed by END), or -1."""
    cdef int k
    for k in range(8):
        if _word_end(p, i, n, _RAW[k], _RAW_SIZE[k]):
            return k
    return -1


cdef inline Py_ssize_t _raw_text_end(text_t *p, Py_ssize_t i, Py_ssize_t n, int k) noexcept nogil:
    """The "<" of the first ``</name`` + END at or after ``i``, or -1."""
    while True:
        i = _find(p, i, n, 60)
        if i < 0:
            return -1
        if i + 1 < n and p[i + 1] == 47 and _word_end(p, i + 2, n, _RAW[k], _RAW_SIZE[k]):
            return i
        i += 1


cdef inline bint _special(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Whether the start tag name at ``i`` is one the scan acts on: a, area, body, plaintext, raw text, v:."""
    cdef ucs4 c = p[i] | 32
    if c == 118:  # v
        return i + 1 < n and p[i + 1] == 58
    if c == 97:
        return _word_end(p, i, n, b"a", 1) or _word_end(p, i, n, b"area", 4)
    if c == 98:
        return _word_end(p, i, n, b"body", 4)
    if c == 112:
        return _word_end(p, i, n, b"plaintext", 9)
    return _raw_element(p, i, n) >= 0


# What the next action is (the named groups of _NEXT).
cdef enum:
    COND = 1
    LINK = 2
    BODY = 3
    ENDBODY = 4
    STOP = 5


cdef struct Action:
    int kind
    Py_ssize_t start  # of the match's group ("<" of the tag; for STOP where the scan ends)
    Py_ssize_t end  # where the next match starts
    Py_ssize_t tag_end  # LINK: the end of the tag name (start + 1 .. tag_end), where the attributes start
    Py_ssize_t attrs_end  # LINK: the end of the attributes, at ">"


cdef inline Py_ssize_t _no_action(text_t *p, Py_ssize_t lt, Py_ssize_t n) noexcept nogil:
    """One repetition of _NEXT's first group at the "<" ``lt``: where it ends, or -1."""
    cdef Py_ssize_t i = lt + 1, e
    cdef ucs4 c
    cdef int k
    if i >= n:
        return i  # a "<" that starts nothing is text
    c = p[i]
    if c == 47:  # "/": an end tag, "</>" or a bogus comment
        if i + 1 < n and _alpha(p[i + 1]):
            if _word_end(p, i + 1, n, b"body", 4):
                return -1
            return _tag_rest(p, i + 2, n)
        if i + 1 < n and p[i + 1] == 62:
            return i + 2
        if i + 1 >= n:
            return -1
        e = _find(p, i + 2, n, 62)
        return -1 if e < 0 else e + 1
    if _alpha(c):
        if not _special(p, i, n):
            return _tag_rest(p, i + 1, n)
        k = _raw_element(p, i, n)
        if k < 0:
            return -1
        e = _tag_rest(p, i + 1, n)
        return -1 if e < 0 else _raw_text_end(p, e, n, k)
    if c == 33:  # "!"
        e = _conditional(p, i, n)
        if e >= 0:  # downlevel-revealed "<!--[if !mso]><!-->" needs no action; hidden is an action
            if _word(p, e, n, b"<!--", 4):
                e += 4
                if e < n and p[e] == 62:
                    return e + 1
                if e + 1 < n and p[e] == 45 and p[e + 1] == 62:
                    return e + 2
                if e + 2 < n and p[e] == 45 and p[e + 1] == 45 and p[e + 2] == 62:
                    return e + 3
            return -1
        if _word(p, i, n, b"!--", 3):
            return _comment_end(p, i + 3, n)
        e = _find(p, i + 1, n, 62)
        return -1 if e < 0 else e + 1
    if c == 63:  # "?"
        e = _find(p, i + 1, n, 62)
        return -1 if e < 0 else e + 1
    return i  # a "<" that starts nothing is text


cdef inline void _action(text_t *p, Py_ssize_t lt, Py_ssize_t n, Action *out) noexcept nogil:
    """_NEXT's second group at the "<" ``lt`` where the first stopped: cond, link, body, endbody or stop."""
    cdef Py_ssize_t i = lt + 1, e
    out.start = lt
    out.kind = STOP
    if i >= n:
        return
    e = _conditional(p, i, n)
    if e >= 0:
        out.kind = COND
        out.end = e
        return
    if _word_end(p, i, n, b"a", 1) or _word_end(p, i, n, b"area", 4) or (
        (p[i] | 32) == 118 and i + 1 < n and p[i + 1] == 58
    ):
        e = i + 1
        while e < n and not _end(p[e]):
            e += 1
        out.tag_end = e
        e = _attrs(p, e, n)
        if e < n and p[e] == 62:
            out.kind = LINK
            out.attrs_end = e
            out.end = e + 1
        return
    if _word_end(p, i, n, b"body", 4):
        e = _attrs(p, i + 4, n)
        if e < n and p[e] == 62:
            out.kind = BODY
            out.end = e + 1
        return
    if p[i] == 47 and _word_end(p, i + 1, n, b"body", 4):
        e = _attrs(p, i + 5, n)
        if e < n and p[e] == 62:
            out.kind = ENDBODY
            out.end = e + 1


cdef inline void _next(text_t *p, Py_ssize_t pos, Py_ssize_t n, Action *out) noexcept nogil:
    """_NEXT.match at ``pos``: skip what needs no action, then report the action."""
    cdef Py_ssize_t lt, e
    while True:
        lt = _find(p, pos, n, 60)
        if lt < 0:
            out.kind = STOP
            out.start = n
            return
        e = _no_action(p, lt, n)
        if e < 0:
            _action(p, lt, n, out)
            return
        pos = e


cdef inline bint _first_href(text_t *p, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *span, ucs4 *quote) noexcept nogil:
    """_FIRST_HREF over the attributes p[i:n]: the span and quote of the first href's value."""
    cdef Py_ssize_t j = _attribute(p, i, n, True)
    cdef ucs4 c
    while j >= 0:
        i = j
        j = _attribute(p, i, n, True)
    while i < n and (_sp(p[i]) or p[i] == 47):
        i += 1
    if not _word(p, i, n, b"href", 4):
        return False
    i += 4
    while i < n and _sp(p[i]):
        i += 1
    if i >= n or p[i] != 61:
        return False
    i += 1
    while i < n and _sp(p[i]):
        i += 1
    if i < n and (p[i] == 34 or p[i] == 39):
        c = p[i]
        j = _find(p, i + 1, n, c)
        if j < 0:
            return False
        span[0], span[1], quote[0] = i + 1, j, c
        return True
    j = i
    while j < n and not (_sp(p[j]) or p[j] == 62):
        j += 1
    span[0], span[1], quote[0] = i, j, 0
    return True


cdef inline bint _maybe_opt_out(text_t *p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """_MAYBE_OPT_OUT.search over p[i:n]: ``-no-track`` or ``-notrack``, any case."""
    while True:
        i = _find(p, i, n, 45)
        if i < 0:
            return False
        if _word(p, i + 1, n, b"no", 2):
            if _word(p, i + 3, n, b"track", 5) or (i + 3 < n and p[i + 3] == 45 and _word(p, i + 4, n, b"track", 5)):
                return True
        i += 1


_QUOTE = {0: "", 34: '"', 39: "'"}


cdef tuple _scan(text_t *p, str html, Py_ssize_t n, bint links, object href_type, object opted_out):
    cdef list found = []
    cdef Py_ssize_t body_end = -1, end_body = -1, hidden_until = -1, pos = 0
    cdef Py_ssize_t span[2]
    cdef ucs4 quote
    cdef Action a
    cdef str tag
    while True:
        _next(p, pos, n, &a)
        if a.kind == STOP:
            return found, body_end, end_body, a.start
        pos = a.end
        if a.kind == LINK:
            if links and _first_href(p, a.tag_end, a.attrs_end, span, &quote):
                if _maybe_opt_out(p, a.tag_end, a.attrs_end) and opted_out(html, a.tag_end, a.attrs_end):
                    continue
                tag = html[a.start + 1 : a.tag_end]
                if tag.isascii():  # HTML lower-cases ASCII letters only
                    tag = tag.lower()
                found.append((tag, href_type(span[0], span[1], _QUOTE[quote])))
        elif a.kind == COND:
            if pos > hidden_until:
                hidden_until = html.find("-->", pos)
                hidden_until = n if hidden_until < 0 else hidden_until
        elif a.kind == BODY:
            if body_end < 0 and pos > hidden_until:
                body_end = pos
        elif a.kind == ENDBODY:
            if a.start > hidden_until:
                end_body = a.start


def scan(str html, bint links, object href_type, object opted_out):
    """``html_scan.pure_scan``'s reading of ``html``: (links, body_end, end_body, stop).

    Each link is (lower-cased tag, ``href_type(start, end, quote)``); a tag whose
    attributes may hold an opt-out is dropped when ``opted_out(html, start, end)``.
    """
    cdef int kind = PyUnicode_KIND(html)
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(html)
    if kind == PyUnicode_1BYTE_KIND:
        return _scan(<ucs1 *>PyUnicode_DATA(html), html, n, links, href_type, opted_out)
    if kind == PyUnicode_2BYTE_KIND:
        return _scan(<ucs2 *>PyUnicode_DATA(html), html, n, links, href_type, opted_out)
    return _scan(<ucs4 *>PyUnicode_DATA(html), html, n, links, href_type, opted_out)


# -- base64url for core.tokens ---------------------------------------------------

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize

cdef signed char _SEXTET[256]
cdef int _k
for _k in range(256):
    _SEXTET[_k] = -1
for _k, _c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"):
    _SEXTET[ord(_c)] = _k


def b64url_decode(str token):
    """The bytes of a canonical, unpadded base64url ``token``; None for anything else.

    None is not an error: ``core.tokens._b64decode`` then decodes (or refuses) the
    token itself, so only the common, well-formed case is done here. Canonical:
    only the base64url alphabet, no padding, no length of 4k+1, and the unused low
    bits of the last character zero.
    """
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(token), i = 0, o = 0, tail = n % 4
    cdef const unsigned char *p
    cdef unsigned char *out
    cdef unsigned int v
    cdef signed char a, b, c, d
    if PyUnicode_KIND(token) != PyUnicode_1BYTE_KIND or tail == 1:
        return None
    p = <const unsigned char *>PyUnicode_DATA(token)
    result = PyBytes_FromStringAndSize(NULL, n // 4 * 3 + (tail - 1 if tail else 0))
    out = <unsigned char *>PyBytes_AS_STRING(result)
    while i + 4 <= n:
        a, b, c, d = _SEXTET[p[i]], _SEXTET[p[i + 1]], _SEXTET[p[i + 2]], _SEXTET[p[i + 3]]
        if (a | b | c | d) < 0:
            return None
        v = (<unsigned int>a << 18) | (<unsigned int>b << 12) | (<unsigned int>c << 6) | <unsigned int>d
        out[o], out[o + 1], out[o + 2] = (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF
        i += 4
        o += 3
    if tail:
        a, b = _SEXTET[p[i]], _SEXTET[p[i + 1]]
        c = _SEXTET[p[i + 2]] if tail == 3 else 0
        if (a | b | c) < 0:
            return None
        v = (<unsigned int>a << 18) | (<unsigned int>b << 12) | (<unsigned int>c << 6)
        if (tail == 2 and v & 0xFFFF) or (tail == 3 and v & 0xFF):
            return None  # not canonical: "QQ" and "QR" would both decode to b"A"
        out[o] = (v >> 16) & 0xFF
        if tail == 3:
            out[o + 1] = (v >> 8) & 0xFF
    return result


# -- the shape of a token body, for core.tokens ------------------------------------

# core.tokens._FIELD_TYPES: message_id, recipient, url, metadata, expires, account, link.
cdef tuple _FIELD_TYPES = (str, str, str, dict, int, str, int)
cdef tuple _PADS = tuple((None,) * (7 - size) for size in range(8))


def body_padding(object fields):
    """``core.tokens._SHAPES.get(tuple(map(type, fields)))`` for a list ``fields``, else None.

    The Nones that complete a well-typed body to its seven fields, or None when
    it is not a list of at most seven fields, each exactly its type or None.
    """
    cdef Py_ssize_t size, k
    if type(fields) is not list:
        return None
    size = len(<list>fields)
    if size > 7:
        return None
    for k in range(size):
        field = (<list>fields)[k]
        if field is not None and type(field) is not _FIELD_TYPES[k]:
            return None
    return _PADS[size]
