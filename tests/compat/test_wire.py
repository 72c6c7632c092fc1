"""Links are wire-compatible with the real pytracking2 0.4.6, both ways.

Plain links are byte-identical for the same inputs; Fernet links (random IV,
current time) cannot be, so they are decoded across instead.
"""

from __future__ import annotations

import base64
import string
from typing import Any
from urllib.parse import urljoin

import pytest
import pytracking as pt2
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.provisional import urls

from mailbeacon import pytracking as mb
from mailbeacon.pytracking import tracking

from .strategies import FERNET_KEY, base_urls, destinations, link_settings, metadata

RESULT_FIELDS = (
    "is_open_tracking",
    "is_click_tracking",
    "tracked_url",
    "webhook_url",
    "metadata",
    "request_data",
)


def _same_result(ours: Any, theirs: Any) -> None:
    for name in RESULT_FIELDS:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert type(ours.timestamp) is int
    assert abs(ours.timestamp - theirs.timestamp) <= 1
    assert str(ours) == str(theirs)


@given(metadata=st.none() | metadata, base=base_urls, settings=link_settings)
def test_open_urls_are_byte_identical(
    metadata: dict[str, Any] | None, base: str, settings: dict[str, Any]
) -> None:
    kwargs = {"base_open_tracking_url": base, **settings}
    assert mb.get_open_tracking_url(metadata, **kwargs) == pt2.get_open_tracking_url(metadata, **kwargs)


@given(url=destinations, metadata=st.none() | metadata, base=base_urls, settings=link_settings)
def test_click_urls_are_byte_identical(
    url: str, metadata: dict[str, Any] | None, base: str, settings: dict[str, Any]
) -> None:
    kwargs = {"base_click_tracking_url": base, **settings}
    assert mb.get_click_tracking_url(url, metadata, **kwargs) == pt2.get_click_tracking_url(
        url, metadata, **kwargs
    )


@given(url=st.none() | destinations, metadata=st.none() | metadata, settings=link_settings)
def test_data_to_embed_is_identical(
    url: str | None, metadata: dict[str, Any] | None, settings: dict[str, Any]
) -> None:
    ours = mb.Configuration(**settings)
    theirs = pt2.Configuration(**settings)
    data = ours.get_data_to_embed(url, metadata)
    assert data == theirs.get_data_to_embed(url, metadata)
    assert ours.get_url_encoded_data_str(data) == theirs.get_url_encoded_data_str(data)


@pytest.mark.parametrize("key", [None, FERNET_KEY], ids=["plain", "fernet"])
@given(
    url=destinations, metadata=st.none() | metadata, settings=link_settings, request_data=st.none() | metadata
)
def test_click_links_decode_across(
    key: bytes | None,
    url: str,
    metadata: dict[str, Any] | None,
    settings: dict[str, Any],
    request_data: dict[str, Any] | None,
) -> None:
    kwargs = {
        "base_click_tracking_url": "https://a.b.com/tracking/",
        "encryption_bytestring_key": key,
        **settings,
    }
    for make, decode, reference in (
        (pt2.get_click_tracking_url, mb.get_click_tracking_result, pt2.get_click_tracking_result),
        (mb.get_click_tracking_url, pt2.get_click_tracking_result, mb.get_click_tracking_result),
    ):
        link = make(url, metadata, **kwargs)
        # The full URL and the path alone, as both libraries accept.
        path = pt2.get_click_tracking_url_path(link, **kwargs)
        assert mb.get_click_tracking_url_path(link, **kwargs) == path
        for encoded in (link, path, "/" + path):
            _same_result(decode(encoded, request_data, **kwargs), reference(encoded, request_data, **kwargs))
        result = decode(link, request_data, **kwargs)
        assert result.tracked_url == url
        assert result.is_click_tracking
        assert not result.is_open_tracking


@pytest.mark.parametrize("key", [None, FERNET_KEY], ids=["plain", "fernet"])
@given(metadata=st.none() | metadata, settings=link_settings)
def test_open_links_decode_across(
    key: bytes | None, metadata: dict[str, Any] | None, settings: dict[str, Any]
) -> None:
    kwargs = {
        "base_open_tracking_url": "https://a.b.com/tracking/open/",
        "encryption_bytestring_key": key,
        **settings,
    }
    for make, decode, reference in (
        (pt2.get_open_tracking_url, mb.get_open_tracking_result, pt2.get_open_tracking_result),
        (mb.get_open_tracking_url, pt2.get_open_tracking_result, mb.get_open_tracking_result),
    ):
        link = make(metadata, **kwargs)
        path = pt2.get_open_tracking_url_path(link, **kwargs)
        assert mb.get_open_tracking_url_path(link, **kwargs) == path
        ours, theirs = decode(path, None, **kwargs), reference(path, None, **kwargs)
        _same_result(ours, theirs)
        assert ours.tracked_url is None
        assert ours.is_open_tracking
        assert not ours.is_click_tracking
        assert ours.to_json_dict()._asdict() | {"timestamp": 0} == theirs.to_json_dict()._asdict() | {
            "timestamp": 0
        }


def _outcome(decode: Any, token: str, **kwargs: Any) -> tuple[str, Any]:
    try:
        result = decode(token, **kwargs)
    except Exception as exc:
        return ("raised", type(exc))
    return ("ok", (result.tracked_url, result.metadata, result.webhook_url))


@given(
    token=st.text(max_size=40) | st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode())
)
def test_garbage_fails_the_same_way(token: str) -> None:
    """The compatible decoder raises what pytracking2 raises (callers may catch those types)."""
    assert _outcome(mb.get_open_tracking_result, token) == _outcome(pt2.get_open_tracking_result, token)
    kwargs = {"encryption_bytestring_key": FERNET_KEY}
    assert _outcome(mb.get_click_tracking_result, token, **kwargs) == _outcome(
        pt2.get_click_tracking_result, token, **kwargs
    )


def test_known_vectors_from_pytracking2_tests() -> None:
    assert mb.get_open_tracking_url(base_open_tracking_url="https://a.b.com/tracking/open/") == (
        "https://a.b.com/tracking/open/e30="
    )
    assert mb.get_click_tracking_url(
        "https://www.bob.com/hello-world/?token=valueééé", base_click_tracking_url="https://a.b.com/tracking/"
    ) == (
        "https://a.b.com/tracking/eyJ1cmwiOiAiaHR0cHM6Ly93d3cuYm9iLmNvbS9oZWxsby13b3JsZC8_dG9rZW49dmFsdWVcdTAw"
        "ZTlcdTAwZTlcdTAwZTkifQ=="
    )


def test_strings_and_pixel_match() -> None:
    settings = {
        "webhook_url": "https://webhook.com/tracking/",
        "base_open_tracking_url": "https://a.b.com/tracking/open/",
        "base_click_tracking_url": "https://a.b.com/tracking/",
    }
    assert str(mb.Configuration(**settings)) == str(pt2.Configuration(**settings))
    assert str(mb.TrackingResult(True, False, "u")) == str(pt2.TrackingResult(True, False, "u"))
    assert mb.get_open_tracking_pixel() == pt2.get_open_tracking_pixel()
    assert (mb.TRACKING_PIXEL, mb.PNG_MIME_TYPE, mb.DEFAULT_TIMEOUT_SECONDS) == (
        pt2.TRACKING_PIXEL,
        pt2.PNG_MIME_TYPE,
        pt2.DEFAULT_TIMEOUT_SECONDS,
    )
    json_result = mb.TrackingResult(True, False, None, "w", {"a": 1}, {"b": 2}, 7).to_json_dict()
    assert type(json_result).__name__ == "TrackingResultJSON"
    assert json_result._fields == pt2.tracking.TrackingResultJSON._fields
    assert tuple(json_result) == (True, False, None, "w", {"a": 1}, {"b": 2}, 7)


def _join_outcome(join: Any, base: str, token: str) -> tuple[str, Any]:
    try:
        return ("ok", join(base, token))
    except Exception as exc:
        return ("raised", type(exc))


@given(
    base=base_urls | urls() | st.text(max_size=30),
    token=st.text(alphabet=string.ascii_letters + string.digits + "-_=", min_size=1, max_size=12)
    | st.text(max_size=12),
)
def test_cached_join_is_urljoin(base: str, token: str) -> None:
    """The per-base prefix cache gives exactly what urljoin gives."""
    assert _join_outcome(tracking._join, base, token) == _join_outcome(urljoin, base, token)
