"""server.stream_tokens: mint and read stream tokens, expiry, scope, forgery (no server needed)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from mailbeacon import Key, KeyRing, Tracker
from mailbeacon.server.stream import StreamFilter
from mailbeacon.server.stream_tokens import PREFIX, mint_stream_token, read_stream_token, stream_filter

RING = KeyRing([Key("k1", bytes(range(32)))])
ROTATED = KeyRing([Key("k2", bytes(range(50, 82))), Key("k1", bytes(range(32)))])  # k1 still accepted
OTHER = KeyRing([Key("k1", bytes(range(1, 33)))])  # same id, another secret


def mint(
    scope: dict[str, object] | None = None, ttl: float = 60, keys: KeyRing = RING, account: str = "acc_a"
) -> str:
    return mint_stream_token(keys, account, ttl, scope or {})[0]


def parts(token: str) -> tuple[dict[str, object], str]:
    body, tag = token.removeprefix(PREFIX).split(".")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))), tag


def rebuilt(claims: dict[str, object], tag: str) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{PREFIX}{body}.{tag}"


def test_a_minted_token_reads_back_its_account_and_scope() -> None:
    token, expires = mint_stream_token(RING, "acc_a", 60, {"message": "m1", "types": ["opened"]})
    assert token.startswith(PREFIX)
    assert expires == pytest.approx(time.time() + 60, abs=2)
    assert read_stream_token(RING, token) == ("acc_a", {"message": "m1", "types": ["opened"]})


def test_a_token_expires() -> None:
    token, expires = mint_stream_token(RING, "acc_a", 60, {})
    assert read_stream_token(RING, token, now=expires) is not None
    assert read_stream_token(RING, token, now=expires + 1) is None


def test_an_old_key_still_in_the_ring_reads_its_tokens() -> None:
    token = mint(keys=RING)
    assert read_stream_token(ROTATED, token) == ("acc_a", {})
    newer = mint(keys=ROTATED)
    assert parts(newer)[0]["k"] == "k2"
    assert read_stream_token(RING, newer) is None  # k2 unknown there


def test_a_token_from_another_server_s_key_is_refused() -> None:
    assert read_stream_token(OTHER, mint()) is None


def test_changing_the_account_breaks_the_mac() -> None:
    claims, tag = parts(mint(account="acc_a"))
    assert read_stream_token(RING, rebuilt({**claims, "a": "acc_b"}, tag)) is None


@pytest.mark.parametrize(
    "change",
    [
        {"s": {}},  # drop the scope: widen to every message
        {"s": {"message": "m2"}},
        {"e": 4_000_000_000},  # extend the expiry
        {"k": "k2"},
    ],
)
def test_any_change_to_the_claims_breaks_the_mac(change: dict[str, object]) -> None:
    claims, tag = parts(mint({"message": "m1"}))
    assert read_stream_token(ROTATED, rebuilt({**claims, **change}, tag)) is None


@pytest.mark.parametrize(
    "forged",
    [
        "",
        "mbs1.",
        "mbs1..",
        "mbs1.e30.",  # {} with no tag
        "mbs1.!!!.???",
        "mbs1.a.b.c",
        "mbs2." + "x" * 40,
        PREFIX + base64.urlsafe_b64encode(b"[1,2]").decode() + ".AAAA",
    ],
)
def test_malformed_tokens_are_refused_without_an_exception(forged: str) -> None:
    assert read_stream_token(RING, forged) is None


def test_a_truncated_tag_is_refused() -> None:
    token = mint()
    claims, tag = parts(token)
    raw = base64.urlsafe_b64decode(tag + "=" * (-len(tag) % 4))
    short = base64.urlsafe_b64encode(raw[:16]).rstrip(b"=").decode()
    assert read_stream_token(RING, rebuilt(claims, short)) is None
    # The tag's last character carries 4 bits and 2 of padding, which a decoder ignores:
    # "A" to "B" changed only padding (the same tag, accepted: this failed 1 run in 16).
    # "A" and "Q" differ in the carried bits, and every other well-formed last character
    # differs from "A" in them.
    assert read_stream_token(RING, token[:-1] + ("A" if token[-1] != "A" else "Q")) is None


def test_a_tracking_token_signed_with_the_same_key_is_not_a_stream_token() -> None:
    url = Tracker("https://t.example", keys=RING).open_url(message_id="m1")
    tracking = url.rsplit("/", 1)[-1].split(".")[0]
    assert read_stream_token(RING, PREFIX + tracking) is None
    assert read_stream_token(RING, tracking) is None


# -- scope against the query ----------------------------------------------------------------


def test_without_a_scope_the_query_filters() -> None:
    where = stream_filter("acc_a", {}, message="m1", campaign="c", tag="t", types=["opened"])
    assert where == StreamFilter("acc_a", "m1", "c", "t", frozenset({"opened"}))


def test_the_token_s_scope_cannot_be_widened_by_the_query() -> None:
    scope = {"message": "m2", "campaign": "spring", "tag": "vip", "types": ["read"]}
    where = stream_filter(
        "acc_a", scope, message="m1", campaign="autumn", tag="all", types=["opened", "read"]
    )
    assert where == StreamFilter("acc_a", "m2", "spring", "vip", frozenset({"read"}))


def test_a_field_the_token_leaves_open_may_be_narrowed() -> None:
    where = stream_filter("acc_a", {"campaign": "spring"}, message="m9", types=["clicked"])
    assert where == StreamFilter("acc_a", "m9", "spring", None, frozenset({"clicked"}))


def test_the_account_comes_from_the_credential_only() -> None:
    account, scope = read_stream_token(RING, mint({"message": "m1"}, account="acc_a")) or ("", {})
    where = stream_filter(account, scope, message="m1")
    event = {"account_id": "acc_b", "message_id": "m1", "type": "opened"}
    assert not where.wants(event, None, frozenset())
    assert where.wants({**event, "account_id": "acc_a"}, None, frozenset())


def test_a_read_only_token_is_not_an_api_key() -> None:
    # The only thing a stream token carries is a read scope: no route but /api/v1/stream reads
    # it (the API's key lookup hashes what it is given; tests/server/test_stream.py checks 401).
    claims, _ = parts(mint())
    assert set(claims) == {"k", "a", "e", "s"}
