"""rewrite_text_links: bare URLs in plain text, found the way people write them in mail."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core.html import TrackedLink
from mailbeacon.core.text import rewrite_text_links


def mark(url: str, index: int) -> str:
    return f"<<{index}:{url}>>"


def never(url: str, index: int) -> None:
    return None


def urls(text: str) -> list[str]:
    """The URLs rewrite_text_links would track in ``text``."""
    return [link.url for link in rewrite_text_links(text, mark)[1]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Visit https://a.example/x now", ["https://a.example/x"]),
        ("http://a.example", ["http://a.example"]),
        ("See https://a.example/x.", ["https://a.example/x"]),
        ("Really? https://a.example/x?!", ["https://a.example/x"]),
        (
            "https://a.example/x, https://b.example/y; https://c.example/z:",
            [
                "https://a.example/x",
                "https://b.example/y",
                "https://c.example/z",
            ],
        ),
        ("(https://a.example/x)", ["https://a.example/x"]),
        ("(see https://a.example/x).", ["https://a.example/x"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("(https://en.wikipedia.org/wiki/Foo_(bar)).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[https://a.example/x]", ["https://a.example/x"]),
        ("https://a.example/?q[0]=1", ["https://a.example/?q[0]=1"]),
        ("<https://a.example/x>", ["https://a.example/x"]),
        ("<https://a.example/x.>", ["https://a.example/x."]),  # the brackets say where it ends
        ("<https://a.example/x)>", ["https://a.example/x)"]),
        ('"https://a.example/x"', ["https://a.example/x"]),
        ("'https://a.example/x'", ["https://a.example/x"]),
        ("https://a.example/x>y", ["https://a.example/x"]),
        ("https://a.example/x<y", ["https://a.example/x"]),
        ("line https://a.example/x\r\nnext", ["https://a.example/x"]),
        ("tab https://a.example/x\tnext", ["https://a.example/x"]),
        ("nbsp https://a.example/x\xa0next", ["https://a.example/x"]),
        ("Link:https://a.example/x", ["https://a.example/x"]),
        ("café https://a.example/café?q=é.", ["https://a.example/café?q=é"]),
        ("https://a.example/a?next=https://b.example/", ["https://a.example/a?next=https://b.example/"]),
        ("//a.example/protocol-relative is not written in text", []),
        ("xhttps://a.example/glued", []),
        ("svn+https://a.example/repo", []),
        ("https:// a.example", []),
        ("https://", []),
        ("https:///path", []),
        ("https://.", []),
        ("ftp://a.example/x mailto:a@example.com", []),
    ],
)
def test_finds_urls_as_written(text: str, expected: list[str]) -> None:
    assert urls(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://a.example/?u={{ user_id }}",
        "https://a.example/?u={{user_id}}.",
        "https://a.example/{% url 'x' %}",
        "https://a.example/?e=*|EMAIL|*",
        "https://a.example/?e=*|EMAIL|*.",
        "https://a.example/?e=*|EMAIL|*)",
        "https://a.example/%name%",
        "https://a.example/?u=[name]",
        "(https://a.example/?u=[name])",
        "https://a.example/${id}",
        "https://a.example/{id}",
        "https://a.example/{0}/x",
        "https://a.example/?{{",
        "https://a.example/\x00x",
        "https://a.example/\udce9",  # an undecodable byte carried through by surrogateescape
    ],
)
def test_urls_with_placeholders_or_junk_are_left_alone(text: str) -> None:
    calls: list[str] = []

    def click(url: str, index: int) -> str:
        calls.append(url)
        return "TRACKED"

    assert rewrite_text_links(text, click) == (text, ())
    assert calls == []


def test_replaces_in_place_keeping_every_other_character() -> None:
    text = "Hi,\r\n\r\nRead (https://a.example/post).\r\nOr <https://b.example/x>!\r\n-- \r\nhttps://c.example\r\n"
    new, links = rewrite_text_links(text, mark)
    assert new == (
        "Hi,\r\n\r\nRead (<<0:https://a.example/post>>).\r\nOr <<<1:https://b.example/x>>>!\r\n-- \r\n"
        "<<2:https://c.example>>\r\n"
    )
    assert links == (
        TrackedLink(
            index=0, url="https://a.example/post", tracked_url="<<0:https://a.example/post>>", tag="text"
        ),
        TrackedLink(index=1, url="https://b.example/x", tracked_url="<<1:https://b.example/x>>", tag="text"),
        TrackedLink(index=2, url="https://c.example", tracked_url="<<2:https://c.example>>", tag="text"),
    )


def test_indexes_start_where_asked_and_count_links_not_tracked() -> None:
    def some(url: str, index: int) -> str | None:
        return None if "skip" in url else f"T{index}"

    new, links = rewrite_text_links(
        "https://a.example/1 https://a.example/skip https://a.example/{x} https://a.example/3",
        some,
        start_index=5,
    )
    assert new == "T5 https://a.example/skip https://a.example/{x} T7"
    assert [(link.index, link.url) for link in links] == [
        (5, "https://a.example/1"),
        (7, "https://a.example/3"),
    ]


def test_no_urls_returns_the_same_text() -> None:
    text = "nothing to see here"
    assert rewrite_text_links(text, mark) == (text, ())


def test_same_url_twice_is_two_links() -> None:
    new, links = rewrite_text_links("https://a.example https://a.example", mark)
    assert new == "<<0:https://a.example>> <<1:https://a.example>>"
    assert len(links) == 2


@pytest.mark.parametrize(
    "text",
    [
        "http://" * 200_000,
        "https://a" + ")" * 1_000_000,
        "(" * 500_000 + "https://a" + ")" * 500_000,
        "https://a" + ".)]" * 300_000,
        "https://" + "a" * 1_000_000,
        "xhttps://" * 100_000,
        "<" * 1_000_000,
        "https://a/" + "{" * 1_000_000,
        ("https://a.example/x " * 50_000),
    ],
    ids=lambda text: repr(text[:12]),
)
def test_linear_time_on_hostile_input(text: str) -> None:
    started = time.perf_counter()
    new, _ = rewrite_text_links(text, never)
    assert new == text
    rewrite_text_links(text, mark)
    assert time.perf_counter() - started < 3.0


FRAGMENTS = st.sampled_from(
    [
        "https://",
        "http://",
        "HTTPS://",
        "a.example",
        "/path",
        "?q=1",
        "é",
        "(",
        ")",
        "[",
        "]",
        "<",
        ">",
        '"',
        "'",
        ".",
        ",",
        ";",
        ":",
        "!",
        "?",
        " ",
        "\r\n",
        "\t",
        "{{",
        "}}",
        "*|",
        "|*",
        "%",
        "${",
        "\x00",
        "\udce9",
        "x",
    ]
)
TEXTS = st.one_of(st.text(), st.lists(st.one_of(FRAGMENTS, st.text(max_size=3)), max_size=40).map("".join))


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_never_raises_and_declining_changes_nothing(text: str) -> None:
    assert rewrite_text_links(text, never) == (text, ())


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_tracking_every_link_only_replaces_those_links(text: str) -> None:
    same, links = rewrite_text_links(text, lambda url, index: url)
    assert same == text
    new, marked = rewrite_text_links(text, mark)
    assert [link.url for link in marked] == [link.url for link in links]
    rebuilt = new
    for link in marked:
        assert link.url.lower().startswith(("http://", "https://"))
        assert not any(char.isspace() or char in '<>"' for char in link.url)
        rebuilt = rebuilt.replace(link.tracked_url, link.url, 1)
    assert rebuilt == text
