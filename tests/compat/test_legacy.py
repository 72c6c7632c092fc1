"""decode_legacy_token: strict decoding of pytracking2 tokens; every failure is a TokenError."""

from __future__ import annotations

import base64
import json
from typing import Any
from unittest.mock import patch

import pytest
import pytracking as pt2
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from mailbeacon.core.errors import BadSignature, MalformedToken, TokenError, TokenExpired
from mailbeacon.pytracking import legacy
from mailbeacon.pytracking.legacy import LegacyHit, decode_legacy_token

from .strategies import FERNET_KEY, OTHER_FERNET_KEY, destinations, metadata

NOW = 1_700_000_000.0
CLICK_BASE = "https://a.b.com/tracking/"


def plain(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode()


def fernet(data: Any, *, at: float = NOW, key: bytes = FERNET_KEY) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return Fernet(key).encrypt_at_time(raw, int(at)).decode()


# -- what pytracking2 writes decodes ------------------------------------------


@given(url=destinations, metadata=metadata, webhook=st.booleans())
def test_pytracking2_plain_click_links_decode(url: str, metadata: dict[str, Any], webhook: bool) -> None:
    link = pt2.get_click_tracking_url(
        url,
        metadata,
        base_click_tracking_url=CLICK_BASE,
        webhook_url="https://w/",
        include_webhook_url=webhook,
    )
    hit = decode_legacy_token(link, now=NOW)
    assert hit == LegacyHit(url=url, metadata=metadata, signed=False)
    assert decode_legacy_token(link[len(CLICK_BASE) :], now=NOW) == hit
    assert decode_legacy_token("/tracking/" + link[len(CLICK_BASE) :], now=NOW) == hit


@given(metadata=st.none() | metadata)
def test_pytracking2_fernet_open_links_decode(metadata: dict[str, Any] | None) -> None:
    link = pt2.get_open_tracking_url(
        metadata, base_open_tracking_url="https://a.b.com/o/", encryption_bytestring_key=FERNET_KEY
    )
    hit = decode_legacy_token(link, fernet_key=FERNET_KEY, now=NOW)
    assert hit == LegacyHit(url=None, metadata=metadata or {}, signed=True)


def test_mailbeacon_links_decode_too() -> None:
    from mailbeacon import pytracking as mb

    link = mb.get_click_tracking_url("https://x.example/p?q=1", {"id": 7}, base_click_tracking_url=CLICK_BASE)
    assert decode_legacy_token(link, now=NOW) == LegacyHit("https://x.example/p?q=1", {"id": 7}, False)


def test_fernet_ttl() -> None:
    token = fernet({"url": "https://x/"}, at=NOW - 100)
    assert decode_legacy_token(token, fernet_key=FERNET_KEY, max_age_seconds=100, now=NOW).url == "https://x/"
    with pytest.raises(TokenExpired, match="101 s old"):
        decode_legacy_token(token, fernet_key=FERNET_KEY, max_age_seconds=100, now=NOW + 1)
    # Without a TTL Fernet tokens never expire (pytracking2's behaviour).
    assert decode_legacy_token(token, fernet_key=FERNET_KEY, now=NOW + 10**9).signed
    # From the future beyond Fernet's 60 s clock skew.
    future = fernet({}, at=NOW + 61)
    with pytest.raises(MalformedToken, match="future"):
        decode_legacy_token(future, fernet_key=FERNET_KEY, max_age_seconds=100, now=NOW)
    assert decode_legacy_token(fernet({}, at=NOW + 60), fernet_key=FERNET_KEY, max_age_seconds=0, now=NOW)


def test_expired_forgery_is_a_bad_signature_not_expired() -> None:
    token = fernet({}, at=NOW - 1000, key=OTHER_FERNET_KEY)
    with pytest.raises(BadSignature):
        decode_legacy_token(token, fernet_key=FERNET_KEY, max_age_seconds=10, now=NOW)


def test_modes_do_not_mix() -> None:
    with pytest.raises(MalformedToken, match="Fernet"):
        decode_legacy_token(plain({"url": "https://evil/"}), fernet_key=FERNET_KEY, now=NOW)
    with pytest.raises(MalformedToken):
        decode_legacy_token(fernet({}), now=NOW)
    with pytest.raises(BadSignature):
        decode_legacy_token(fernet({}, key=OTHER_FERNET_KEY), fernet_key=FERNET_KEY, now=NOW)


def test_configuration_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="needs fernet_key"):
        decode_legacy_token("e30=", max_age_seconds=10, now=NOW)
    with pytest.raises(ValueError, match="non-negative"):
        decode_legacy_token("e30=", fernet_key=FERNET_KEY, max_age_seconds=-1, now=NOW)
    with pytest.raises(ValueError, match="finite"):
        decode_legacy_token("e30=", fernet_key=FERNET_KEY, max_age_seconds=1, now=float("nan"))
    with pytest.raises(ValueError, match="Fernet key"):
        decode_legacy_token("e30=", fernet_key=b"short", now=NOW)


def test_missing_cryptography_names_the_extra() -> None:
    with (
        patch.dict("sys.modules", {"cryptography.fernet": None}),
        pytest.raises(ImportError, match=r"mailbeacon\[crypto\]"),
    ):
        decode_legacy_token("e30=", fernet_key=FERNET_KEY, now=NOW)


# -- strictness -----------------------------------------------------------------


def test_size_cap_comes_before_any_work() -> None:
    with (
        patch.object(legacy, "_strict_b64decode", side_effect=AssertionError("decoded")),
        pytest.raises(MalformedToken, match="4096"),
    ):
        decode_legacy_token("A" * 4097, now=NOW)
    with pytest.raises(MalformedToken, match="4096"):
        decode_legacy_token("https://a.b.com/tracking/" + "e30=" * 1020, now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "/",
        "https://a.b.com/tracking/",
        "e30",  # padding missing
        "e30==",  # padding extra
        "e31=",  # unused bits set: decodes like e30= in pytracking2
        " e30=",
        "e30=\n",
        "e3 0=",
        "e30%3D",
        "e30=?x=1",
        "e30=#f",
        # standard base64's '+' ('/' separates path segments, so it never reaches the decoder)
        "eyJ1cmwiOiAiaHR0cHM6Ly93d3cuYm9iLmNvbS9oZWxsby13b3JsZC8+dG9rZW49dmFsdWVcdTAwZTkifQ==",
        "ZTMwPQ=",
        "====",
        "é30=",
    ],
)
def test_non_canonical_base64_is_refused(token: str) -> None:
    with pytest.raises(MalformedToken):
        decode_legacy_token(token, now=NOW)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty|JSON"),
        (b"\xff\xfe", "UTF-8"),
        (b"[1]", "not an object"),
        (b'"x"', "not an object"),
        (b"null", "not an object"),
        (b"{", "JSON"),
        (b"[" * 3000, "JSON"),  # RecursionError in pytracking2
        (b'{"url": "https://x/", "extra": 1}', "unexpected keys"),
        (b'{"url": 5}', "'url'"),
        (b'{"url": ""}', "'url'"),
        (b'{"url": null}', "'url'"),
        (b'{"metadata": [1]}', "'metadata'"),
        (b'{"metadata": null}', "'metadata'"),
        (b'{"webhook": 1}', "'webhook'"),
        (b'{"url": "https://a/", "url": "https://b/"}', "repeats"),
        (b'{"metadata": {"a": NaN}}', "NaN"),
        (b'{"metadata": {"a": -Infinity}}', "Infinity"),
        (b'{"metadata": {"a": 1e999}}', "out of range"),
        (b'{"metadata": {"a": "\\ud800"}}', "surrogate"),
        (b'{"metadata": {"\\udfff": 1}}', "surrogate"),
        (b'{"metadata": ' + b'{"a": ' * 40 + b"1" + b"}" * 41, "nested"),
        (b'{"metadata": {"a": 1}} x', "JSON"),
    ],
)
def test_unexpected_json_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(MalformedToken, match=message):
        decode_legacy_token(plain(payload), now=NOW)
    with pytest.raises(MalformedToken, match=message):
        decode_legacy_token(fernet(payload), fernet_key=FERNET_KEY, now=NOW)


def test_shapes_pytracking2_writes_are_accepted() -> None:
    assert decode_legacy_token(plain({}), now=NOW) == LegacyHit(None, {}, False)
    assert decode_legacy_token(plain({"webhook": "https://w/"}), now=NOW) == LegacyHit(None, {}, False)
    deep: Any = 1
    for _ in range(legacy.MAX_METADATA_DEPTH - 1):
        deep = [deep]
    assert decode_legacy_token(plain({"metadata": {"a": deep}}), now=NOW).metadata == {"a": deep}
    with pytest.raises(MalformedToken, match="nested"):
        decode_legacy_token(plain({"metadata": {"a": [deep]}}), now=NOW)


def test_unsigned_hits_say_so() -> None:
    assert "never redirect" in " ".join((LegacyHit.__doc__ or "").split())
    assert decode_legacy_token(plain({"url": "https://evil.example/"}), now=NOW).signed is False


# -- properties: hostile input only ever raises TokenError --------------------------


def _decode_or_token_error(token: Any, **kwargs: Any) -> LegacyHit | None:
    try:
        return decode_legacy_token(token, now=NOW, **kwargs)
    except TokenError:
        return None


MODES = [{}, {"fernet_key": FERNET_KEY}, {"fernet_key": FERNET_KEY, "max_age_seconds": 3600}]


@pytest.mark.parametrize("mode", MODES, ids=["plain", "fernet", "fernet-ttl"])
@given(token=st.text(max_size=200) | st.text(alphabet="ABCDEFabcdef0123456789-_=/", max_size=200))
def test_random_text_only_raises_token_errors(mode: dict[str, Any], token: str) -> None:
    _decode_or_token_error(token, **mode)


@pytest.mark.parametrize("mode", MODES, ids=["plain", "fernet", "fernet-ttl"])
@given(raw=st.binary(max_size=300))
def test_random_base64_only_raises_token_errors(mode: dict[str, Any], raw: bytes) -> None:
    _decode_or_token_error(base64.urlsafe_b64encode(raw).decode(), **mode)
    _decode_or_token_error(base64.urlsafe_b64encode(b"\x80" + raw).decode(), **mode)


@st.composite
def valid_tokens(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data["url"] = draw(destinations)
    if draw(st.booleans()):
        data["metadata"] = draw(metadata)
    if draw(st.booleans()):
        data["webhook"] = "https://webhook.example/"
    use_fernet = draw(st.booleans())
    token = fernet(data, at=NOW - draw(st.integers(0, 7200))) if use_fernet else plain(data)
    mode = draw(st.sampled_from(MODES[1:])) if use_fernet else {}
    return token, mode


@given(case=valid_tokens(), cut=st.integers(min_value=1))
def test_truncated_tokens_only_raise_token_errors(case: tuple[str, dict[str, Any]], cut: int) -> None:
    token, mode = case
    assert _decode_or_token_error(token, **mode) is not None or "max_age_seconds" in mode
    _decode_or_token_error(token[: -(cut % len(token)) or None], **mode)


@given(case=valid_tokens(), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_bit_flipped_tokens_only_raise_token_errors(
    case: tuple[str, dict[str, Any]], position: int, bit: int
) -> None:
    token, mode = case
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[position % len(raw)] ^= 1 << bit
    flipped = base64.urlsafe_b64encode(bytes(raw)).decode()
    hit = _decode_or_token_error(flipped, **mode)
    if "fernet_key" in mode:
        assert hit is None  # Fernet is authenticated: any flipped bit is refused
    text = list(token)
    text[position % len(text)] = chr(ord(text[position % len(text)]) ^ (1 << bit))
    _decode_or_token_error("".join(text), **mode)


def test_pytracking2_own_decoder_lets_other_exceptions_escape() -> None:
    """Why this module exists: the same inputs crash pytracking2's decoder with non-token errors."""
    escaped = set()
    for payload in (b"[" * 3000, b"[1]", b'{"metadata": 5}', b"\xff", b"x"):
        try:
            pt2.get_open_tracking_result(plain(payload))
        except Exception as exc:
            escaped.add(type(exc).__name__)
        with pytest.raises(MalformedToken):
            decode_legacy_token(plain(payload), now=NOW)
    for token in ("e30",):
        try:
            pt2.get_open_tracking_result(token)
        except Exception as exc:
            escaped.add(type(exc).__name__)
        with pytest.raises(MalformedToken):
            decode_legacy_token(token, now=NOW)
    assert escaped == {
        "RecursionError",
        "AttributeError",
        "TypeError",
        "UnicodeDecodeError",
        "JSONDecodeError",
        "Error",
    }
