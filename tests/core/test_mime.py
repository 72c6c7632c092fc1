"""track_message and list_unsubscribe_headers: what a receiver sees after SMTP serialisation."""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import pickle
import re
from collections.abc import Iterator
from email.message import EmailMessage, Message

import pytest

from mailbeacon.core.errors import InvalidDestination
from mailbeacon.core.mime import list_unsubscribe_headers, track_message

HREF = re.compile(r'href="([^"]*)"')
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Clicks:
    """A click_url that maps each destination to https://t.example/c/<index> and remembers it."""

    def __init__(self) -> None:
        self.dest: dict[str, str] = {}

    def __call__(self, url: str, index: int | None = None) -> str | None:
        tracked = f"https://t.example/c/{len(self.dest)}"
        self.dest[tracked] = url
        return tracked

    def html(self, html: str) -> str:
        """A tiny HTML rewriter: tracks every http(s) href without a merge tag."""

        def sub(match: re.Match[str]) -> str:
            url = match.group(1)
            if not url.startswith(("http://", "https://")) or "{{" in url:
                return match.group()
            return f'href="{self(url)}"'

        return HREF.sub(sub, html)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def wire(msg: Message) -> bytes:
    return msg.as_bytes(policy=email.policy.SMTP)


def received(msg: Message) -> EmailMessage:
    """What a receiver parses after the message went over SMTP."""
    return parse(wire(msg))


def track(msg: EmailMessage, **kwargs: object) -> tuple[EmailMessage, Clicks]:
    """track_message with Clicks.html, checking that the input is not mutated."""
    clicks = Clicks()
    before = wire(msg)
    kwargs.setdefault("rewrite_html", clicks.html)
    tracked = track_message(msg, **kwargs)  # type: ignore[arg-type]
    assert tracked is not msg
    assert wire(msg) == before
    return tracked, clicks


def leaves(msg: Message) -> Iterator[Message]:
    return (part for part in msg.walk() if not part.is_multipart())


def by_type(msg: Message, content_type: str) -> list[Message]:
    return [part for part in msg.walk() if part.get_content_type() == content_type]


def only(msg: Message, content_type: str) -> EmailMessage:
    (part,) = by_type(msg, content_type)
    assert isinstance(part, EmailMessage)
    return part


def content(part: Message) -> str:
    assert isinstance(part, EmailMessage)
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")  # SMTP makes every line end CRLF


def html_message(html: str = '<p><a href="https://a.example/x">x</a></p>') -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Sender <sender@example.com>"
    msg["To"] = "alice@example.com"
    msg["Subject"] = "Hello"
    msg["Message-ID"] = "<m1@example.com>"
    msg["X-Campaign"] = "spring"
    msg.set_content(html, subtype="html")
    return msg


def test_single_part_html_is_tracked_and_headers_kept() -> None:
    msg = html_message()
    tracked, clicks = track(msg)
    got = received(tracked)
    assert HREF.findall(content(got)) == ["https://t.example/c/0"]
    assert clicks.dest == {"https://t.example/c/0": "https://a.example/x"}
    for name in ("From", "To", "Subject", "Message-ID", "X-Campaign", "MIME-Version"):
        assert got[name] == msg[name]
    assert got.get_content_charset() == msg.get_content_charset()
    assert got["Content-Transfer-Encoding"] == msg["Content-Transfer-Encoding"] == "7bit"


def test_unchanged_html_keeps_the_exact_bytes() -> None:
    msg = html_message("<p>no links</p>")
    tracked, _ = track(msg)
    assert wire(tracked) == wire(msg)


def test_alternative_tracks_html_and_leaves_text_unless_asked() -> None:
    msg = html_message()
    msg.set_content("Plain https://a.example/plain here.\n")
    msg.add_alternative('<a href="https://a.example/html">x</a>', subtype="html")
    tracked, clicks = track(msg)
    got = received(tracked)
    assert content(got.get_body(("plain",)) or Message()) == "Plain https://a.example/plain here.\n"
    assert only(tracked, "text/plain").as_bytes() == only(msg, "text/plain").as_bytes()
    assert list(clicks.dest.values()) == ["https://a.example/html"]

    tracked, clicks = track(msg, rewrite_text=lambda text: text.replace("https://a.example/plain", "T"))
    assert content(only(received(tracked), "text/plain")) == "Plain T here.\n"


def test_related_inline_image_is_untouched() -> None:
    msg = html_message()
    msg.set_content("text")
    msg.add_alternative('<a href="https://a.example/x"><img src="cid:logo@x"></a>', subtype="html")
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(PNG, "image", "png", cid="<logo@x>")
    tracked, clicks = track(msg)
    got = received(tracked)
    image, original = only(got, "image/png"), only(msg, "image/png")
    assert image.get_content() == PNG
    assert only(tracked, "image/png").get_payload() == original.get_payload()
    assert original.as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[1] in wire(tracked)
    assert image["Content-ID"] == "<logo@x>"
    assert 'src="cid:logo@x"' in content(only(got, "text/html"))
    assert list(clicks.dest.values()) == ["https://a.example/x"]


def _attachments_message() -> EmailMessage:
    msg = html_message()
    msg.add_attachment(PDF, "application", "pdf", filename="report.pdf")
    msg.add_attachment(
        '<a href="https://a.example/attached">keep me</a>', subtype="html", filename="page.html"
    )
    inner = html_message('<a href="https://a.example/forwarded">fwd</a>')
    msg.add_attachment(inner)  # message/rfc822
    return msg


def test_mixed_attachments_are_byte_for_byte_untouched() -> None:
    msg = _attachments_message()
    tracked, clicks = track(msg)
    assert list(clicks.dest.values()) == ["https://a.example/x"]
    original_parts = msg.get_payload()
    tracked_parts = parse(wire(tracked)).get_payload()
    assert isinstance(original_parts, list)
    assert isinstance(tracked_parts, list)
    for original, got in zip(original_parts[1:], tracked_parts[1:], strict=True):
        assert wire(got) == wire(original)
        # the encoded attachment, headers and body, is on the wire exactly as before
        assert wire(original) in wire(tracked)
    pdf = only(received(tracked), "application/pdf")
    assert pdf.get_content() == PDF


def test_text_html_marked_attachment_or_with_filename_is_untouched() -> None:
    raw = (
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n<a href="https://a.example/1">1</a>\r\n'
        b'--b\r\nContent-Type: text/html; name="x.html"\r\n\r\n<a href="https://a.example/2">2</a>\r\n'
        b'--b\r\nContent-Type: text/html\r\nContent-Disposition: inline\r\n\r\n<a href="https://a.example/3">3</a>\r\n'
        b"--b--\r\n"
    )
    tracked, clicks = track(parse(raw))
    assert list(clicks.dest.values()) == ["https://a.example/3"]
    assert wire(tracked).count(b"https://a.example/") == 2


def test_nested_mixed_alternative() -> None:
    msg = html_message()
    msg.set_content("text https://a.example/t")
    msg.add_alternative('<a href="https://a.example/nested">x</a>', subtype="html")
    msg.add_attachment(PDF, "application", "pdf", filename="a.pdf")
    assert msg.get_content_type() == "multipart/mixed"
    tracked, clicks = track(msg)
    got = received(tracked)
    assert [p.get_content_type() for p in got.walk()] == [p.get_content_type() for p in msg.walk()]
    assert HREF.findall(content(only(got, "text/html"))) == ["https://t.example/c/0"]
    assert clicks.dest["https://t.example/c/0"] == "https://a.example/nested"
    assert only(got, "application/pdf").get_content() == PDF


def test_multipart_signed_is_never_touched() -> None:
    raw = (
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary="s"\r\n\r\n'
        b'--s\r\nContent-Type: text/html\r\n\r\n<a href="https://a.example/signed">x</a>\n'
        b"--s\r\nContent-Type: application/pgp-signature\r\n\r\nSIG\r\n--s--\r\n"
    )
    msg = parse(raw)
    tracked, clicks = track(msg)
    assert clicks.dest == {}
    assert wire(tracked) == wire(msg)


ISO_HTML = (
    "<p>Café crème, déjà vu</p>"
    '<a href="https://a.example/café?q=é">tracked</a>'
    '<a href="https://a.example/{{ é }}">untracked</a>'
    '<a href="mailto:rené@example.com">mail</a>'
)


def _iso_qp_message(html: str = ISO_HTML) -> EmailMessage:
    raw = (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/html; charset="iso-8859-1"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    import quopri

    return parse(raw + quopri.encodestring(html.encode("iso-8859-1")).replace(b"\n", b"\r\n"))


def test_iso_8859_1_quoted_printable_keeps_charset_cte_and_accents() -> None:
    msg = _iso_qp_message()
    assert content(msg) == ISO_HTML
    tracked, clicks = track(msg)
    got = received(tracked)
    assert got.get_content_charset() == "iso-8859-1"
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    html = content(got)
    assert html == ISO_HTML.replace("https://a.example/café?q=é", "https://t.example/c/0")
    assert clicks.dest == {"https://t.example/c/0": "https://a.example/café?q=é"}
    assert b"=E9" in wire(tracked)  # é is one latin-1 octet, quoted


def test_iso_8859_1_with_the_real_html_rewriter() -> None:
    html_module = pytest.importorskip("mailbeacon.core.html")
    clicks = Clicks()
    msg = _iso_qp_message()

    def rewrite(html: str) -> str:
        result = html_module.rewrite_html(html, click_url=clicks)
        assert isinstance(result.html, str)
        return result.html

    tracked = track_message(msg, rewrite_html=rewrite)
    got = received(tracked)
    assert got.get_content_charset() == "iso-8859-1"
    html = content(got)
    assert "<p>Café crème, déjà vu</p>" in html
    assert 'href="https://a.example/{{ é }}"' in html
    assert 'href="mailto:rené@example.com"' in html
    tracked_urls = [url for url in HREF.findall(html) if url.startswith("https://t.example/c/")]
    assert [clicks.dest[url] for url in tracked_urls] == ["https://a.example/café?q=é"]


def test_iso_8859_1_html_gets_a_character_reference_for_what_latin_1_cannot_hold() -> None:
    msg = _iso_qp_message("<p>Prix: 5 EUR</p>")
    tracked, _ = track(msg, rewrite_html=lambda html: html.replace("EUR", "€ ✓"))
    got = received(tracked)
    assert got.get_content_charset() == "iso-8859-1"
    assert content(got) == "<p>Prix: 5 &#8364; &#10003;</p>"


def test_base64_utf8_stays_base64_utf8() -> None:
    html = '<p>日本語のテキスト — naïve</p><a href="https://a.example/ü">x</a>\n' * 3
    msg = html_message()
    msg.set_content(html, subtype="html", cte="base64")
    tracked, clicks = track(msg)
    got = received(tracked)
    assert got["Content-Transfer-Encoding"] == "base64"
    assert got.get_content_charset() == "utf-8"
    expected = html.replace("https://a.example/ü", "{}").format(
        *(f"https://t.example/c/{i}" for i in range(3))
    )
    assert content(got) == expected
    assert set(clicks.dest.values()) == {"https://a.example/ü"}
    body = wire(tracked).split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    base64.b64decode(body)  # valid base64


def test_part_without_charset_stays_us_ascii_until_content_needs_more() -> None:
    raw = b'MIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<a href="https://a.example/x">x</a>\n'
    msg = parse(raw)
    tracked, _ = track(msg)
    assert tracked.get_param("charset") is None
    assert "Content-Transfer-Encoding" not in tracked
    assert content(received(tracked)) == '<a href="https://t.example/c/0">x</a>\n'

    tracked, _ = track(msg, rewrite_html=lambda html: html.replace("x</a>", "café</a>"))
    got = received(tracked)
    assert got.get_content_charset() == "utf-8"
    assert got["Content-Transfer-Encoding"] == "quoted-printable"  # 7bit cannot carry it
    assert content(got) == '<a href="https://a.example/x">café</a>\n'


def test_mislabelled_8bit_bytes_survive_around_the_rewrite() -> None:
    raw = (
        b"MIME-Version: 1.0\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b'<p>caf\xe9 \xff</p><a href="https://a.example/x">x</a>\n'
    )
    tracked, _ = track(parse(raw))
    assert b'<p>caf\xe9 \xff</p><a href="https://t.example/c/0">x</a>\r\n' in wire(tracked)
    assert tracked.get_param("charset") is None


def test_unknown_charset_or_transfer_encoding_is_left_alone() -> None:
    for header in (
        b'Content-Type: text/html; charset="x-no-such-charset"\r\n',
        b"Content-Type: text/html\r\nContent-Transfer-Encoding: x-custom\r\n",
    ):
        msg = parse(b"MIME-Version: 1.0\r\n" + header + b'\r\n<a href="https://a.example/x">x</a>\r\n')
        tracked, clicks = track(msg)
        assert clicks.dest == {}
        assert wire(tracked) == wire(msg)


def test_7bit_part_with_a_long_line_becomes_quoted_printable() -> None:
    msg = html_message('<a href="https://a.example/x">x</a>\n')
    long_url = "https://t.example/c/" + "A" * 2000
    tracked, _ = track(msg, rewrite_html=lambda html: html.replace("https://a.example/x", long_url))
    assert tracked["Content-Transfer-Encoding"] == "quoted-printable"
    on_the_wire = wire(tracked)
    assert max(len(line) for line in on_the_wire.split(b"\r\n")) <= 78
    assert content(received(tracked)) == f'<a href="{long_url}">x</a>\n'


def test_8bit_part_keeps_8bit_while_lines_fit() -> None:
    msg = html_message()
    msg.set_content('<p>naïve</p><a href="https://a.example/x">x</a>\n', subtype="html", cte="8bit")
    tracked, _ = track(msg)
    assert tracked["Content-Transfer-Encoding"] == "8bit"
    assert content(received(tracked)) == '<p>naïve</p><a href="https://t.example/c/0">x</a>\n'
    assert "naïve".encode() in wire(tracked)


def test_plain_text_message_with_rewrite_text() -> None:
    text_module = pytest.importorskip("mailbeacon.core.text")
    clicks = Clicks()
    msg = EmailMessage()
    msg["Subject"] = "Plain"
    msg.set_content("Read https://a.example/post.\nOr <https://a.example/b>.\n")

    def rewrite(text: str) -> str:
        new, _ = text_module.rewrite_text_links(text, clicks)
        assert isinstance(new, str)
        return new

    tracked = track_message(msg, rewrite_html=lambda html: pytest.fail("no html here"), rewrite_text=rewrite)
    got = received(tracked)
    assert content(got) == "Read https://t.example/c/0.\nOr <https://t.example/c/1>.\n"
    assert list(clicks.dest.values()) == ["https://a.example/post", "https://a.example/b"]
    assert got["Subject"] == "Plain"


def test_plain_text_in_latin_1_moves_to_utf8_only_for_characters_latin_1_lacks() -> None:
    msg = EmailMessage()
    msg.set_content("Prix: 5 EUR, café\n", charset="iso-8859-1", cte="quoted-printable")
    tracked, _ = track(msg, rewrite_text=lambda text: text.replace("5", "6"))
    assert tracked.get_content_charset() == "iso-8859-1"
    tracked, _ = track(msg, rewrite_text=lambda text: text.replace("EUR", "€"))
    got = received(tracked)
    assert got.get_content_charset() == "utf-8"
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    assert content(got) == "Prix: 5 €, café\n"


def test_non_mime_message_gets_mime_version_when_its_encoding_changes() -> None:
    msg = parse(b"Subject: old\r\n\r\nhello https://a.example/x\r\n")
    tracked, _ = track(msg, rewrite_text=lambda text: text.replace("hello", "héllo"))
    assert tracked["MIME-Version"] == "1.0"
    assert content(received(tracked)) == "héllo https://a.example/x\n"


def test_headers_replace_existing_ones_and_long_urls_stay_verbatim() -> None:
    msg = html_message()
    msg["List-Unsubscribe"] = "<https://old.example/u>"
    url = "https://t.example.com/u/" + "Ab-_" * 100
    headers = list_unsubscribe_headers(url, mailto="unsubscribe@example.com")
    tracked, _ = track(msg, headers=headers)
    raw = wire(tracked)
    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:unsubscribe@example.com>\r\n".encode() in raw
    assert b"=?" not in raw  # no RFC 2047 encoded-words around the URL
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    got = received(tracked)
    assert got.get_all("List-Unsubscribe") == [f"<{url}>, <mailto:unsubscribe@example.com>"]
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"] == "<https://old.example/u>"
    # the result stays a normal message: copyable and picklable
    assert wire(copy.deepcopy(tracked)) == raw
    assert wire(pickle.loads(pickle.dumps(tracked))) == raw


def test_short_header_is_written_on_one_line_and_non_ascii_is_encoded() -> None:
    tracked, _ = track(html_message(), headers={"X-Tag": "a b", "X-Name": "Café"})
    raw = wire(tracked)
    assert b"X-Tag: a b\r\n" in raw
    assert received(tracked)["X-Name"] == "Café"


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Bad", "a\r\nBcc: victim@example.com"), ("X-Bad", "a\nb"), ("Bad Name", "x"), ("X-Long", "a" * 1000)],
)
def test_header_injection_is_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError, match="header"):
        track_message(html_message(), rewrite_html=str, headers={name: value})


def test_list_unsubscribe_headers() -> None:
    assert list_unsubscribe_headers("https://t.example/u/tok") == {
        "List-Unsubscribe": "<https://t.example/u/tok>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    both = list_unsubscribe_headers("https://t.example/u/tok", mailto="mailto:u@example.com?subject=stop")
    assert both["List-Unsubscribe"] == "<https://t.example/u/tok>, <mailto:u@example.com?subject=stop>"
    assert list_unsubscribe_headers("HTTPS://t.example/u")["List-Unsubscribe"] == "<HTTPS://t.example/u>"


@pytest.mark.parametrize(
    "url",
    [
        "http://t.example/u/tok",
        "mailto:u@example.com",
        "//t.example/u",
        "https://",
        "https:///path",
        "https://t.example/u\r\nBcc: x@example.com",
        "https://t.example/u\n",
        "https://t.example/<u>",
        "https://t.example/u,v",
        "https://t.example/u v",
        "https://t.example/é",
        "https://t.example/" + "a" * 1000,
    ],
)
def test_list_unsubscribe_refuses(url: str) -> None:
    with pytest.raises(InvalidDestination):
        list_unsubscribe_headers(url)


def test_list_unsubscribe_http_message_says_why() -> None:
    with pytest.raises(InvalidDestination, match=r"https.*RFC 8058"):
        list_unsubscribe_headers("http://t.example/u")


@pytest.mark.parametrize("mailto", ["", "mailto:", "u@example.com>", "a@x, b@y", "u@example.com\r\n"])
def test_list_unsubscribe_refuses_bad_mailto(mailto: str) -> None:
    with pytest.raises(InvalidDestination):
        list_unsubscribe_headers("https://t.example/u", mailto=mailto)


def test_every_leaf_is_decodable_after_tracking() -> None:
    msg = _attachments_message()
    tracked, _ = track(msg, headers=list_unsubscribe_headers("https://t.example/u"))
    got = received(tracked)
    assert not got.defects
    for part in leaves(got):
        assert not part.defects
        part.get_payload(decode=True)
