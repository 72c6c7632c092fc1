"""Tracker: the public facade over tokens, HTML and MIME."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from mailbeacon import (
    ConfigError,
    GmailClipWarning,
    HitKind,
    KeyRing,
    MalformedToken,
    TokenExpired,
    Tracker,
)

NOW = 1_700_000_000.0


def test_url_shapes(tracker: Tracker) -> None:
    assert tracker.open_url(message_id="m").startswith("https://t.example.com/o/")
    assert tracker.click_url("https://a.example/", message_id="m").startswith("https://t.example.com/c/")
    assert tracker.unsubscribe_url(message_id="m").startswith("https://t.example.com/u/")


def test_base_url_trailing_slash_is_ignored(ring: KeyRing) -> None:
    assert (
        Tracker("https://t.example.com/track/", ring).open_url().startswith("https://t.example.com/track/o/")
    )


def test_decode_accepts_url_or_bare_token(tracker: Tracker) -> None:
    url = tracker.click_url(
        "https://a.example/x?y=1", message_id="m1", recipient="r1", metadata={"c": 1}, link=2
    )
    hit = tracker.decode(url)
    assert (hit.kind, hit.url, hit.message_id, hit.recipient, hit.metadata, hit.link) == (
        HitKind.CLICK,
        "https://a.example/x?y=1",
        "m1",
        "r1",
        {"c": 1},
        2,
    )
    assert tracker.decode(url.rpartition("/")[2]) == hit
    assert tracker.decode(url + "?utm=ignored") == hit


def test_decode_parses_a_url_whose_query_or_fragment_follows_the_token(tracker: Tracker) -> None:
    url = tracker.click_url("https://a.example/x", message_id="m1")
    hit = tracker.decode(url)
    for suffix in ("#top", "?next=/a/b", "?q=1#f", "/"):
        assert tracker.decode(url + suffix) == hit


def test_decode_of_a_malformed_token_on_our_own_path_is_malformed(tracker: Tracker) -> None:
    with pytest.raises(MalformedToken):
        tracker.decode("https://t.example.com/c/not+base64url")


def test_open_token_on_click_path_is_refused(tracker: Tracker) -> None:
    token = tracker.open_url(message_id="m").rpartition("/")[2]
    with pytest.raises(MalformedToken, match="token for open, not for click"):
        tracker.decode(f"https://t.example.com/c/{token}")


def test_ttl_expires_links(ring: KeyRing) -> None:
    now = [NOW]
    tracker = Tracker("https://t.example.com", ring, ttl=timedelta(days=1), clock=lambda: now[0])
    url = tracker.open_url(message_id="m")
    assert tracker.decode(url).expires_at == datetime.fromtimestamp(NOW + 86400, UTC)
    now[0] += 86400
    with pytest.raises(TokenExpired):
        tracker.decode(url)


def test_expires_at_must_be_aware(tracker: Tracker) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        tracker.open_url(expires_at=datetime(2030, 1, 1))


def test_account_travels_in_every_token(ring: KeyRing) -> None:
    tracker = Tracker("https://t.example.com", ring, account="acme")
    assert tracker.decode(tracker.open_url()).account == "acme"


@pytest.mark.parametrize("base_url", ["t.example.com", "ftp://t.example.com", "https://", ""])
def test_bad_base_url_is_a_config_error(ring: KeyRing, base_url: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        Tracker(base_url, ring)


def test_keys_must_be_a_keyring() -> None:
    with pytest.raises(TypeError, match="KeyRing"):
        Tracker("https://t.example.com", "k1:abc")  # type: ignore[arg-type]


def test_track_html_tracks_links_and_adds_pixel_after_body(tracker: Tracker) -> None:
    html = '<!DOCTYPE html><html><body class="x"><a href="https://a.example/?a=1&amp;b=2">A</a></body></html>'
    out = tracker.track_html(html, message_id="m1")
    assert out.startswith('<!DOCTYPE html><html><body class="x"><img ')
    result = tracker.rewrite_html(html, message_id="m1")
    assert len(result.links) == 1
    hit = tracker.decode(result.links[0].tracked_url)
    assert (hit.url, hit.message_id, hit.link) == ("https://a.example/?a=1&b=2", "m1", 0)


def test_track_html_link_indexes_count_up(tracker: Tracker) -> None:
    html = "".join(f'<a href="https://a.example/{i}">x</a>' for i in range(3))
    result = tracker.rewrite_html(html, open_tracking=False)
    assert [tracker.decode(link.tracked_url).link for link in result.links] == [0, 1, 2]


def test_track_html_warns_over_gmail_clip(tracker: Tracker) -> None:
    big = "<html><body>" + "x" * (103 * 1024) + "</body></html>"
    with pytest.warns(GmailClipWarning, match="102 KB"):
        tracker.track_html(big)


def test_track_html_small_does_not_warn(tracker: Tracker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.track_html("<p>hi</p>")


def test_encrypted_tracker_hides_recipient(ring: KeyRing) -> None:
    tracker = Tracker("https://t.example.com", ring, encrypt=True)
    url = tracker.open_url(recipient="alice@example.com")
    assert tracker.decode(url).recipient == "alice@example.com"
    assert tracker.decode(url).encrypted


def test_track_message_numbers_links_across_parts_and_adds_unsubscribe(tracker: Tracker) -> None:
    msg = EmailMessage()
    msg["Message-ID"] = "<abc@example.com>"
    msg["To"] = "alice@example.com"
    msg.set_content("Visit https://a.example/text now.")
    msg.add_alternative('<html><body><a href="https://a.example/html">x</a></body></html>', subtype="html")
    tracked = tracker.track_message(msg, text_links=True, list_unsubscribe=True)
    assert msg.get_body(("html",)).get_content().count("t.example.com") == 0  # input untouched
    html = tracked.get_body(("html",)).get_content()
    text = tracked.get_body(("plain",)).get_content()
    html_url = html.split('href="')[1].split('"')[0]
    text_url = text.split()[1]
    assert tracker.decode(html_url).message_id == "abc@example.com"
    assert {tracker.decode(html_url).link, tracker.decode(text_url).link} == {0, 1}
    assert tracked["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = tracked["List-Unsubscribe"].strip("<>")
    assert tracker.decode(unsubscribe).kind is HitKind.UNSUBSCRIBE


def test_honeypot_link_is_hidden_marked_and_not_a_numbered_link(tracker: Tracker) -> None:
    from mailbeacon.core.tokens import HONEYPOT_FIELD

    html = '<html><body><a href="https://ex.com/a">A</a></body></html>'
    result = tracker.rewrite_html(html, message_id="m", recipient="r", honeypot=True)
    assert [link.index for link in result.links] == [0]
    _head, _, rest = result.html.partition("<body>")
    assert rest.startswith("<a href=")
    hidden = rest.split("</a>")[0]
    assert "display:none" in hidden
    assert "data-mb-honeypot" in hidden
    honeypot = rest.split('"')[1]
    hit = tracker.decode(honeypot)
    assert (hit.message_id, hit.url, hit.link) == ("m", "https://t.example.com/", None)
    assert HONEYPOT_FIELD in hit.metadata
    assert HONEYPOT_FIELD not in tracker.decode(result.links[0].tracked_url).metadata
    plain = tracker.track_html(html, message_id="m")
    assert "data-mb-honeypot" not in plain
