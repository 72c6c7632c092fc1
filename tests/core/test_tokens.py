"""Tokens: round trips, rotation, expiry, and that nothing untrusted ever verifies."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.core.errors import (
    BadSignature,
    InvalidDestination,
    MalformedToken,
    PayloadTooLarge,
    TokenError,
    TokenExpired,
    UnknownKey,
)
from mailbeacon.core.keys import Key, KeyRing
from mailbeacon.core.tokens import (
    MAX_TOKEN_CHARS,
    ClickMinter,
    HitKind,
    check_destination,
    decode_token,
    encode_token,
)

NOW = 1_700_000_000.0
RING = KeyRing([Key("k1", bytes(range(32)))])
OTHER = KeyRing([Key("k1", bytes(range(1, 33)))])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_click_round_trip_keeps_every_field() -> None:
    token = encode_token(
        RING,
        HitKind.CLICK,
        message_id="m-1",
        recipient="r-9",
        url="https://shop.example/é?a=1&b=2",
        metadata={"campaign": "spring", "n": 3, "nested": {"x": [1, 2]}},
        account="acct",
        link=4,
    )
    hit = decode_token(token, RING, now=NOW)
    assert hit.kind is HitKind.CLICK
    assert hit.url == "https://shop.example/é?a=1&b=2"
    assert (hit.message_id, hit.recipient, hit.account, hit.link) == ("m-1", "r-9", "acct", 4)
    assert hit.metadata == {"campaign": "spring", "n": 3, "nested": {"x": [1, 2]}}
    assert hit.key_id == "k1"
    assert hit.encrypted is False


def test_open_token_has_no_url_and_empty_metadata() -> None:
    hit = decode_token(encode_token(RING, HitKind.OPEN, message_id="m"), RING, now=NOW)
    assert hit.kind is HitKind.OPEN
    assert hit.url is None
    assert hit.metadata == {}


def test_token_is_base64url_without_padding() -> None:
    token = encode_token(RING, HitKind.CLICK, url="https://a.example/" + "x" * 50, metadata={"k": "v" * 33})
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_mac_is_128_bits_over_header_and_body() -> None:
    token = encode_token(RING, HitKind.OPEN, message_id="m")
    raw = _raw(token)
    key = RING.active
    assert raw[-16:] == key.mac(raw[:-16])[:16]
    assert raw[0] >> 4 == 1  # version 1


def test_mac_matches_stdlib_hmac_of_derived_key() -> None:
    import hmac

    key = RING.active
    mac_key = hmac.digest(key.secret, b"mailbeacon/v1/mac\x01", "sha256")
    assert key.mac(b"hello") == hmac.digest(mac_key, b"hello", "sha256")


def test_key_verify_accepts_only_the_truncated_mac() -> None:
    key = RING.active
    tag = key.mac(b"hello")[:16]
    assert key.verify(b"hello", tag)
    assert not key.verify(b"hellO", tag)
    assert not key.verify(b"hello", bytes(16))
    assert not OTHER.active.verify(b"hello", tag)


def test_encrypted_round_trip_hides_the_payload() -> None:
    token = encode_token(
        RING, HitKind.CLICK, url="https://secret.example/", recipient="alice@example.com", encrypt=True
    )
    assert b"alice" not in _raw(token)
    assert b"secret.example" not in _raw(token)
    hit = decode_token(token, RING, now=NOW)
    assert hit.recipient == "alice@example.com"
    assert hit.encrypted is True


def test_encrypted_tokens_are_deterministic() -> None:
    first = encode_token(RING, HitKind.OPEN, message_id="m", encrypt=True)
    assert first == encode_token(RING, HitKind.OPEN, message_id="m", encrypt=True)


def test_key_rotation_old_tokens_still_verify() -> None:
    old_ring = KeyRing([Key("k1", bytes(range(32)))])
    old_token = encode_token(old_ring, HitKind.OPEN, message_id="m")
    rotated = KeyRing([Key("k2", bytes(range(50, 82))), Key("k1", bytes(range(32)))])
    new_token = encode_token(rotated, HitKind.OPEN, message_id="m")
    assert decode_token(old_token, rotated, now=NOW).key_id == "k1"
    assert decode_token(new_token, rotated, now=NOW).key_id == "k2"


def test_retired_key_is_unknown_and_names_the_key() -> None:
    token = encode_token(RING, HitKind.OPEN)
    with pytest.raises(UnknownKey, match=r"'k1'.*MAILBEACON_KEYS"):
        decode_token(token, KeyRing([Key("k9", bytes(32))]), now=NOW)


def test_same_id_different_secret_is_bad_signature() -> None:
    with pytest.raises(BadSignature):
        decode_token(encode_token(RING, HitKind.OPEN), OTHER, now=NOW)


def test_expired_token_is_refused() -> None:
    token = encode_token(RING, HitKind.OPEN, expires_at=int(NOW) + 10)
    assert decode_token(token, RING, now=NOW).expires_at is not None
    with pytest.raises(TokenExpired, match="expired"):
        decode_token(token, RING, now=NOW + 10)


def test_oversized_token_refused_before_decoding() -> None:
    with pytest.raises(MalformedToken, match="longer than 4096"):
        decode_token("A" * (MAX_TOKEN_CHARS + 1), RING, now=NOW)
    with pytest.raises(MalformedToken):
        decode_token("!" * 100_000, RING, now=NOW)


def test_encode_refuses_to_mint_what_decode_would_refuse() -> None:
    with pytest.raises(PayloadTooLarge, match="metadata"):
        encode_token(RING, HitKind.OPEN, metadata={"blob": "x" * 4000})


def test_non_canonical_base64_is_refused() -> None:
    token = encode_token(RING, HitKind.OPEN, message_id="m")
    assert len(token) % 4 in (2, 3)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = token[:-1] + alphabet[alphabet.index(token[-1]) + 1]  # same bytes, a set spare bit
    assert _raw(twin) == _raw(token)
    with pytest.raises(MalformedToken, match="canonical"):
        decode_token(twin, RING, now=NOW)


@pytest.mark.parametrize("token", ["", "a", "abc=", "a+b/", "é", "AAAA", "EQ", "EQJrMQ"])
def test_garbage_raises_only_token_errors(token: str) -> None:
    with pytest.raises(TokenError):
        decode_token(token, RING, now=NOW)


def test_wrong_version_is_named() -> None:
    raw = bytearray(_raw(encode_token(RING, HitKind.OPEN)))
    raw[0] = 0x20 | (raw[0] & 0x0F)
    with pytest.raises(MalformedToken, match="version 2"):
        decode_token(_b64(bytes(raw)), RING, now=NOW)


def test_non_string_token_is_a_token_error() -> None:
    with pytest.raises(MalformedToken):
        decode_token(b"abc", RING, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>",
        "vbscript:x",
        "file:///etc/passwd",
        "mailto:a@b.c",
        "https://a.example/\r\nSet-Cookie: x=1",
        "https://a.example/\x00",
        "https:///nohost",
        "https://",
        "ftp://a.example/",
    ],
)
def test_unsafe_destinations_are_never_signed(url: str) -> None:
    with pytest.raises(InvalidDestination):
        encode_token(RING, HitKind.CLICK, url=url)


def test_protocol_relative_destination_becomes_https() -> None:
    assert check_destination("//cdn.example/x") == "https://cdn.example/x"
    assert check_destination("  https://a.example/ ") == "https://a.example/"


def test_click_without_destination_is_refused() -> None:
    with pytest.raises(InvalidDestination):
        encode_token(RING, HitKind.CLICK)


def test_metadata_that_cannot_be_encoded_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="metadata"):
        encode_token(RING, HitKind.OPEN, metadata={"when": object()})


def test_click_minter_refuses_what_encode_token_refuses() -> None:
    minter = ClickMinter(RING, message_id="m")
    with pytest.raises(InvalidDestination):
        minter("javascript:alert(1)", 0)
    with pytest.raises(TypeError, match="link"):
        minter("https://a.example/", -1)
    with pytest.raises(TypeError, match="metadata"):
        ClickMinter(RING, metadata={"when": object()})
    with pytest.raises(TypeError, match="expires_at"):
        ClickMinter(RING, expires_at=1.5)  # type: ignore[arg-type]


# -- properties -------------------------------------------------------------------

_text = st.text(max_size=40)
_meta = st.dictionaries(
    st.text(max_size=10), st.one_of(st.integers(-(2**63), 2**63 - 1), _text, st.booleans()), max_size=4
)


@settings(max_examples=200)
@given(
    message_id=st.none() | _text,
    recipient=st.none() | _text,
    metadata=_meta,
    link=st.none() | st.integers(0, 10**6),
)
def test_round_trip_property(
    message_id: str | None, recipient: str | None, metadata: dict[str, object], link: int | None
) -> None:
    for encrypt in (False, True):
        token = encode_token(
            RING,
            HitKind.CLICK,
            url="https://a.example/p",
            message_id=message_id,
            recipient=recipient,
            metadata=metadata,
            link=link,
            encrypt=encrypt,
        )
        hit = decode_token(token, RING, now=NOW)
        assert (hit.message_id, hit.recipient, hit.metadata, hit.link) == (
            message_id,
            recipient,
            metadata,
            link,
        )


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_random_strings_raise_only_token_errors(token: str) -> None:
    try:
        decode_token(token, RING, now=NOW)
    except TokenError:
        return
    raise AssertionError("a random string verified")  # pragma: no cover


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_random_bytes_as_base64_never_verify(raw: bytes) -> None:
    with pytest.raises(TokenError):
        decode_token(_b64(raw), RING, now=NOW)


@settings(max_examples=300)
@given(data=st.data(), encrypt=st.booleans())
def test_bit_flips_never_verify(data: st.DataObject, encrypt: bool) -> None:
    token = encode_token(
        RING, HitKind.CLICK, url="https://a.example/", message_id="m", metadata={"a": 1}, encrypt=encrypt
    )
    raw = bytearray(_raw(token))
    position = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[position // 8] ^= 1 << (position % 8)
    with pytest.raises(TokenError):
        decode_token(_b64(bytes(raw)), RING, now=NOW)


@settings(max_examples=300)
@given(data=st.data())
def test_truncations_never_verify(data: st.DataObject) -> None:
    token = encode_token(RING, HitKind.CLICK, url="https://a.example/", message_id="m")
    cut = data.draw(st.integers(0, len(token) - 1))
    with pytest.raises(TokenError):
        decode_token(token[:cut], RING, now=NOW)


@settings(max_examples=200)
@given(
    message_id=st.none() | _text,
    recipient=st.none() | _text,
    metadata=st.none() | _meta,
    expires_at=st.none() | st.integers(0, 2**40),
    account=st.none() | _text,
    link=st.integers(0, 2**40),
    url=st.sampled_from(["https://a.example/p", "//cdn.example/x", "http://b.example/?q=é"]),
    encrypt=st.booleans(),
)
def test_click_minter_mints_what_encode_token_mints(
    message_id: str | None,
    recipient: str | None,
    metadata: dict[str, object] | None,
    expires_at: int | None,
    account: str | None,
    link: int,
    url: str,
    encrypt: bool,
) -> None:
    fields = {"message_id": message_id, "recipient": recipient, "metadata": metadata}
    fields |= {"expires_at": expires_at, "account": account, "encrypt": encrypt}
    minter = ClickMinter(RING, **fields)  # type: ignore[arg-type]
    assert minter(url, link) == encode_token(RING, HitKind.CLICK, url=url, link=link, **fields)  # type: ignore[arg-type]
