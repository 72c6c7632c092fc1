"""Signing and ``mailbeacon.webhooks.verify``, checked against the ``standardwebhooks`` library itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
import standardwebhooks

import mailbeacon.webhooks as public
from mailbeacon.webhooks import (
    WebhookHeaderError,
    WebhookSecretError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    new_secret,
    sign_headers,
    verify,
)

NOW = 1_760_000_000
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
BODY = json.dumps({"type": "message.opened", "data": {"message_id": "m1", "seq": 7}})


def signed(body: str = BODY, *secrets: str, msg_id: str = "wh_01", at: int = NOW) -> dict[str, str]:
    return sign_headers(msg_id, at, body, list(secrets or [SECRET]))


def test_a_genuine_webhook_verifies_and_returns_the_body() -> None:
    assert verify(BODY.encode(), signed(), SECRET, now=NOW) == json.loads(BODY)
    assert verify(BODY, signed(), SECRET, now=NOW + 299) == json.loads(BODY)  # str body too


def test_header_names_are_case_insensitive() -> None:
    headers = {name.title(): value for name, value in signed().items()}
    assert verify(BODY, headers, SECRET, now=NOW)["data"]["seq"] == 7


def test_our_signatures_verify_with_the_standardwebhooks_library() -> None:
    headers = sign_headers("wh_02", int(datetime.now(UTC).timestamp()), BODY, [SECRET])
    assert standardwebhooks.Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)


def test_the_library_s_signatures_verify_with_ours() -> None:
    when = datetime.fromtimestamp(NOW, UTC)
    signature = standardwebhooks.Webhook(SECRET).sign("wh_03", when, BODY)
    headers = {"webhook-id": "wh_03", "webhook-timestamp": str(NOW), "webhook-signature": signature}
    assert verify(BODY, headers, SECRET, now=NOW)["type"] == "message.opened"


def test_the_signature_is_the_spec_s_hmac() -> None:
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"wh_01.{NOW}.{BODY}".encode(), hashlib.sha256).digest()
    assert signed()["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert signed()["webhook-id"] == "wh_01"
    assert signed()["webhook-timestamp"] == str(NOW)


@pytest.mark.parametrize(
    ("change", "headers"),
    [
        ("forged signature", {**signed(), "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}),
        ("wrong secret", signed(BODY, OTHER)),
        ("tampered body", signed(BODY.replace("m1", "m2"))),
        ("tampered id", {**signed(), "webhook-id": "wh_02"}),
        ("tampered timestamp", {**signed(), "webhook-timestamp": str(NOW + 1)}),
    ],
)
def test_anything_altered_fails_the_signature(change: str, headers: dict[str, str]) -> None:
    with pytest.raises(WebhookSignatureError, match="no signature matches this body with this secret"):
        verify(BODY, headers, SECRET, now=NOW)


@pytest.mark.parametrize("part", ["body", "id", "secret"])
def test_the_library_refuses_the_same_alterations(part: str) -> None:
    now = int(datetime.now(UTC).timestamp())
    headers = sign_headers("wh_04", now, BODY, [SECRET])
    body, secret = BODY, SECRET
    if part == "body":
        body = BODY + " "
    elif part == "id":
        headers["webhook-id"] = "wh_05"
    else:
        secret = OTHER
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError, match="No matching signature"):
        standardwebhooks.Webhook(secret).verify(body, headers)
    with pytest.raises(WebhookSignatureError):
        verify(body, headers, secret)


@pytest.mark.parametrize(
    ("offset", "words"), [(-301, "too old"), (-86400, "too old"), (301, "too far in the future")]
)
def test_a_timestamp_outside_the_tolerance_is_a_replay(offset: int, words: str) -> None:
    with pytest.raises(WebhookTimestampError, match=words) as caught:
        verify(BODY, signed(), SECRET, now=NOW - offset)
    assert "tolerance 300 s" in str(caught.value)


def test_the_tolerance_is_inclusive_and_configurable() -> None:
    assert verify(BODY, signed(), SECRET, now=NOW + 300)
    assert verify(BODY, signed(), SECRET, now=NOW - 300)
    with pytest.raises(WebhookTimestampError):
        verify(BODY, signed(), SECRET, now=NOW + 31, tolerance=30)


def test_the_timestamp_is_checked_before_the_signature() -> None:
    # A replay with a valid signature fails as a replay, not as a forgery.
    with pytest.raises(WebhookTimestampError):
        verify(BODY, signed(), SECRET, now=NOW + 3600)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(missing: str) -> None:
    headers = {k: v for k, v in signed().items() if k != missing}
    with pytest.raises(WebhookHeaderError, match=f"missing header {missing}"):
        verify(BODY, headers, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("webhook-timestamp", "soon", "not whole seconds"),
        ("webhook-timestamp", "1.5e9", "not whole seconds"),
        ("webhook-timestamp", "-1", "not whole seconds"),
        ("webhook-timestamp", "9" * 30, "not whole seconds"),
        ("webhook-signature", "garbage", "no 'v1,<base64>' signature"),  # the library: ValueError
        ("webhook-signature", "v1a,abcd", "no 'v1,<base64>' signature"),
        ("webhook-signature", "v1,abc", "not base64"),  # the library: binascii.Error
        ("webhook-signature", "v1,!!!!", "not base64"),
    ],
)
def test_malformed_headers_raise_the_typed_error(name: str, value: str, words: str) -> None:
    with pytest.raises(WebhookHeaderError, match=words):
        verify(BODY, {**signed(), name: value}, SECRET, now=NOW)


def test_every_error_is_a_standardwebhooks_verification_error() -> None:
    for error in (WebhookHeaderError, WebhookTimestampError, WebhookSignatureError):
        assert issubclass(error, WebhookVerificationError)
    assert WebhookVerificationError is standardwebhooks.webhooks.WebhookVerificationError
    assert not issubclass(WebhookSecretError, WebhookVerificationError)  # a receiver's config bug


def test_a_body_that_is_not_utf8_fails_the_signature() -> None:
    with pytest.raises(WebhookSignatureError, match="not UTF-8"):
        verify(b"\xff\xfe", signed(), SECRET, now=NOW)


# -- rotation -------------------------------------------------------------------------------


def test_during_rotation_the_header_carries_both_signatures_and_either_secret_verifies() -> None:
    headers = signed(BODY, OTHER, SECRET)
    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 2
    assert all(part.startswith("v1,") for part in parts)
    assert verify(BODY, headers, SECRET, now=NOW)
    assert verify(BODY, headers, OTHER, now=NOW)
    third = "whsec_" + base64.b64encode(bytes(range(2, 34))).decode()
    with pytest.raises(WebhookSignatureError, match="rotated"):
        verify(BODY, headers, third, now=NOW)


def test_the_library_accepts_a_rotation_header_with_either_secret() -> None:
    headers = sign_headers("wh_05", int(datetime.now(UTC).timestamp()), BODY, [OTHER, SECRET])
    assert standardwebhooks.Webhook(SECRET).verify(BODY, headers)
    assert standardwebhooks.Webhook(OTHER).verify(BODY, headers)


def test_unknown_signature_schemes_next_to_v1_are_skipped() -> None:
    headers = signed()
    headers["webhook-signature"] = "v1a,c29tZSBlZDI1NTE5 " + headers["webhook-signature"]
    assert verify(BODY, headers, SECRET, now=NOW)


# -- secrets --------------------------------------------------------------------------------


def test_new_secrets_are_whsec_and_32_random_bytes() -> None:
    one, two = new_secret(), new_secret()
    assert one != two
    assert one.startswith("whsec_")
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == 32
    assert verify(BODY, signed(BODY, one), one, now=NOW)


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("", "starts with 'whsec_'"),
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "starts with 'whsec_'"),  # the prefix cut off
        ("whsec_", "holds 0 bytes"),
        ("whsec_c2hvcnQ=", "holds 5 bytes"),  # the spec asks for 24 at least
        ("whsec_%%%%not-base64%%%%", "not valid base64"),  # the library silently drops the %s
        ("whsec_" + base64.b64encode(bytes(100)).decode(), "holds 100 bytes"),
    ],
)
def test_a_malformed_secret_is_a_secret_error_that_says_what_is_wrong(secret: str, words: str) -> None:
    with pytest.raises(WebhookSecretError, match=words):
        verify(BODY, signed(), secret, now=NOW)
    with pytest.raises(WebhookSecretError):
        sign_headers("wh_01", NOW, BODY, [secret])


def test_an_unpadded_secret_is_accepted() -> None:
    unpadded = "whsec_" + base64.b64encode(bytes(range(25))).decode().rstrip("=")
    assert verify(BODY, signed(BODY, unpadded), unpadded, now=NOW)


def test_the_package_exports_only_what_receivers_need() -> None:
    assert sorted(public.__all__) == public.__all__
    assert {"verify", "WebhookVerificationError", "WebhookSecretError"} <= set(public.__all__)
