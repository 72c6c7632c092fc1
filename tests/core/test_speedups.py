"""The compiled module (core/_speedups.pyx) gives exactly what the pure-Python code gives.

``pure_scan`` is the reference. Every test here runs both on the same input and
compares the whole ``Scan`` (links with their tags, spans and quotes, body
positions, where the scan stopped). Without the compiled module these tests
skip, except with CI=true, where they fail: CI must test what users install.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core import html_scan, tokens
from mailbeacon.core.errors import MalformedToken
from mailbeacon.core.html_scan import Scan, pure_scan

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus" / "email-html"


def compiled() -> Callable[..., Scan]:
    """The compiled scanner, or skip (fail with CI=true) when it was not built."""
    if html_scan.compiled_scan is None:
        reason = "mailbeacon.core._speedups is not built (no C compiler at install?)"
        if os.environ.get("MAILBEACON_PURE_PYTHON", "") not in ("", "0"):
            reason = "MAILBEACON_PURE_PYTHON is set, which blocks mailbeacon.core._speedups"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; with CI=true the compiled scanner must be tested")
        pytest.skip(reason)
    return html_scan.compiled_scan


def same(html: str) -> None:
    fast = compiled()
    for links in (True, False):
        assert fast(html, links=links) == pure_scan(html, links=links)


def test_compiled_scanner_is_the_default_when_built() -> None:
    assert html_scan.scan is compiled()


def test_pure_python_env_var_forces_the_reference() -> None:
    code = "from mailbeacon.core import html_scan as h; print(h.scan is h.pure_scan, h.compiled_scan)"
    env = {**os.environ, "MAILBEACON_PURE_PYTHON": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "None"]


def corpus() -> list[Path]:
    files = sorted(CORPUS.glob("*/*.html")) if CORPUS.is_dir() else []
    if not files and os.environ.get("CI") == "true":
        pytest.fail(f"no e-mail corpus at {CORPUS}; CI must have it")
    return files


@pytest.mark.parametrize("path", corpus(), ids=lambda path: path.name)
def test_corpus(path: Path) -> None:
    html = path.read_text(encoding="utf-8")
    same(html)
    same(html.upper())
    same(html.replace('"', "'"))
    same(html + "é")  # the same document stored one byte a character, then ...
    same(html + "\u0100")  # ... two
    same(html + "\U0001f600")  # ... and four


MALFORMED = [
    *("", "<", "<<<<a", "</", "<!", "<!-", "<!--", "<!-->", "<!--->", "<!---->", "<?", "<?x", "</>", "</ x>"),
    *("<a", "<a href", "<a href=", '<a href="', "<a href='https://a.example/", "<body", "</body", "</body x"),
    *("<!--[if mso]>", "<!--[if mso", "<![endif]-->", "<!--[if !mso]><!-->", "<!--[if !mso]><!--->x"),
    *("<!--[if mso]><!---->", "<!--[IF mso]><body><a href=x>", "<!--[if mso]><v:roundrect href='https://v'>"),
    *("\0<a\0href=https://a.example/\0>", "<a href=\ud800https://a.example/>", "a < b > c"),
    *("<a/href=https://a.example/x>", "<a =href=https://a.example/x>", "<a href = 'x' >", "<a href= x>"),
    *('<b a= "b>b"><a href="https://x">', "<a title= 'x>y' href=https://z>", '<a href\n=\n"x">'),
    *("<a hreflang=x href=y>", "<a href/x>", "<a href>", "<a x href=y>", "<a x= href=y>", "<a x= 'a"),
    *(
        "<a data-notrack href=x>",
        "<a DATA-NO-TRACK href=x>",
        "<a href=x title=data-notrack>",
        "<a -no-trackx>",
    ),
    *("<script>", "<script></script ", "<script><a href=x></script><a href=y>", "<scriptx><a href=z>"),
    *("<SCRIPT>x</ScRiPt>", "<title><body></title/><body>", "<xmp>", "<plaintext><a href=x>", "<v:x href=y>"),
    *("<V:RoundRect HREF=x>", "<abbr href=x>", "<areax href=x>", "<area\thref=x>", "<bodyx>", "</bodyx>"),
    *("<body/>", "<body<a>", "</body/>", "<!doctype html><html><body class='a'>x</body></html>"),
    *("<td title='", "<p x='\"'>", '<p x="\'">', "<!-- <a href=x> -->", "<!-- --!><a href=x>", "<!--->"),
]


@pytest.mark.parametrize("html", MALFORMED)
def test_malformed(html: str) -> None:
    same(html)
    same(html + "\u20ac")


@pytest.mark.slow
@pytest.mark.parametrize(
    "html",
    [
        '<td class="c" style="a:b">x</td>' * 160_000,
        "<div>" * 100_000 + "x" + "</div>" * 100_000,
        '<a href="https://a.example/?a=1&amp;b=2">x</a>' * 50_000,
        '<body><p title="' + "x" * 1_000_000,
        "\0<" * 2_500_000,
        "<!--[if mso]>" + '<v:roundrect href="https://v.example">' * 50_000 + "<![endif]-->",
        "<a x=" * 200_000,
        "<script>" + "</scrip" * 200_000,
        "<!--" + "--!" * 200_000,
    ],
    ids=["5 MB", "nested", "50k links", "unterminated", "NUL and <", "VML", "open tag", "script", "comment"],
)
def test_large(html: str) -> None:
    same(html)


# Pieces that meet at the constructs both scanners must agree on; hypothesis joins them.
PIECES = [
    *("<a ", "<a", "<A", "<area", "<AREA ", "<v:", "<V:rect ", "<b", "<p>", "</p>", "</", "</a>", "/>", "/"),
    *(
        "href",
        "HREF",
        "href=",
        " = ",
        "=",
        "x=",
        "=x",
        "'x'",
        '"y"',
        "'",
        '"',
        " ",
        "\t",
        "\n",
        "\0",
        ">",
        "<",
    ),
    *(
        "https://q.example/?a=1&amp;b=2",
        "//r.example",
        "data-notrack",
        "data-no-track",
        "-NoTrack",
        "hreflang",
    ),
    *(
        "<!--",
        "-->",
        "--!>",
        "-",
        "!",
        "<!-->",
        "<!",
        "<?",
        "<!DOCTYPE html>",
        "<![endif]-->",
        "[if x]",
        "]>",
    ),
    *("<!--[if mso]>", "<!--[if !mso]><!-->", "<!--[IF gte mso 9]>", "<body>", "<BODY class=x>", "</body>"),
    *("<body", "</body", "<script>", "</script>", "</SCRIPT", "<style>", "</style >", "<title>", "</title/"),
    *("<textarea>", "</textarea>", "<xmp>", "</xmp>", "<iframe>", "<noembed>", "<noframes>", "<plaintext>"),
    *("é", "\u20ac", "\U0001f600", "\ud800", "{{ x }}", "&reg", "?"),
]


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(PIECES), max_size=50).map("".join),
        st.text(alphabet="<>/=\"' abhrefv:!-[]i\n\t\0é", max_size=80),
        st.text(max_size=40),
    )
)
def test_property_same_as_pure_python(html: str) -> None:
    same(html)


# -- base64url decoding of tokens --------------------------------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64url_decode() -> Callable[[str], bytes | None]:
    compiled()  # skips or fails the same way when the module is missing
    from mailbeacon.core import _speedups

    return _speedups.b64url_decode


def pure_b64decode(token: str) -> bytes | None:
    """What core.tokens decodes without the compiled module, or None where it refuses."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tokens, "_b64url_decode", None)
        try:
            return tokens._b64decode(token)
        except MalformedToken:
            return None


def test_tokens_use_the_compiled_decoder_when_built() -> None:
    assert tokens._b64url_decode is b64url_decode()


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_property_canonical_tokens_decode_in_c(raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert b64url_decode()(token) == raw == pure_b64decode(token)


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=B64URL + "+/=", max_size=40),
        st.text(alphabet=B64URL + "é\0 ", max_size=12),
        st.text(max_size=12),
        st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    )
)
def test_property_compiled_decoder_is_the_pure_one_or_defers(token: str) -> None:
    fast = b64url_decode()(token)
    assert fast is None or fast == pure_b64decode(token)


@pytest.mark.parametrize("token", ["QQ", "QR", "QQ==", "Q", "Q+Q/", "QQé", "", "A" * 4096])
def test_compiled_decoder_edges(token: str) -> None:
    fast = b64url_decode()(token)
    assert fast is None or fast == pure_b64decode(token)
    assert (fast is None) == (token in ("QR", "QQ==", "Q", "Q+Q/", "QQé"))


# -- the shape check of a token body --------------------------------------------------------------

FIELD_VALUES = [None, "s", {}, {"k": 1}, 0, 7, True, 1.5, b"b", [], "", -1]


def body_padding() -> Callable[[object], tuple[None, ...] | None]:
    compiled()
    from mailbeacon.core import _speedups

    return _speedups.body_padding


def test_tokens_use_the_compiled_shape_check_when_built() -> None:
    assert tokens._body_padding is body_padding()


@pytest.mark.parametrize("shape", list(tokens._SHAPES), ids=str)
def test_every_valid_shape_pads_alike(shape: tuple[type, ...]) -> None:
    example = {str: "s", dict: {}, int: 1, type(None): None}
    fields = [example[kind] for kind in shape]
    assert body_padding()(fields) == tokens._pure_body_padding(fields) == tokens._SHAPES[shape]


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(FIELD_VALUES), max_size=9),
        st.lists(st.sampled_from(FIELD_VALUES), max_size=9).map(tuple),
        st.sampled_from([None, "abc", {}, 3, b"xyz"]),
    )
)
def test_property_shape_check_is_the_pure_one(fields: object) -> None:
    assert body_padding()(fields) == tokens._pure_body_padding(fields)
