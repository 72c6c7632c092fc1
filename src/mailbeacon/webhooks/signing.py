"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is ``v1,`` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")),
computed by the ``standardwebhooks`` library so receivers can use any
Standard Webhooks verifier. During a secret rotation the header carries one
signature per secret, separated by spaces; a receiver accepts any of them.
The timestamp is part of what is signed, and ``verify`` refuses one more than
five minutes away from now: a captured request cannot be replayed later.

Errors (every verification error is a ``standardwebhooks`` ``WebhookVerificationError``,
so code written for that library catches ours too)::

    WebhookVerificationError          the request is not a genuine, fresh webhook: answer 4xx
    ├── WebhookHeaderError            a header is missing or malformed
    ├── WebhookTimestampError         signed too long ago or too far ahead (a replay, or a clock)
    └── WebhookSignatureError         no signature in the header matches this secret and body
    WebhookSecretError (ValueError)   the *receiver's* secret is malformed: a configuration bug
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = [
    "WebhookHeaderError",
    "WebhookSecretError",
    "WebhookSignatureError",
    "WebhookTimestampError",
    "WebhookVerificationError",
    "new_secret",
    "sign_headers",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
TOLERANCE = 300.0  # seconds either side of now, as the standardwebhooks library
_MIN_SECRET, _MAX_SECRET = 24, 64  # bytes; the spec asks for 24 at least


class WebhookHeaderError(WebhookVerificationError):
    """A ``webhook-*`` header is missing or malformed."""


class WebhookTimestampError(WebhookVerificationError):
    """``webhook-timestamp`` is outside the tolerance: a replay, or a badly wrong clock."""


class WebhookSignatureError(WebhookVerificationError):
    """No ``v1`` signature in ``webhook-signature`` matches this secret and body."""


class WebhookSecretError(ValueError):
    """The signing secret is not ``whsec_`` and base64 of 24 to 64 bytes."""


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    """The secret's bytes; strict, unlike the library's decoder, which skips stray characters."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise WebhookSecretError("a webhook secret starts with 'whsec_'; copy it whole from the API")
    text = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookSecretError("the webhook secret after 'whsec_' is not valid base64") from None
    if not _MIN_SECRET <= len(key) <= _MAX_SECRET:
        raise WebhookSecretError(
            f"the webhook secret holds {len(key)} bytes; Standard Webhooks secrets hold 24 to 64"
        )
    return key


def sign_headers(msg_id: str, timestamp: int, body: str, secrets_: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with each of ``secrets_``."""
    when = datetime.fromtimestamp(timestamp, UTC)
    signatures = " ".join(Webhook(_key(secret)).sign(msg_id, when, body) for secret in secrets_)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def _headers(headers: Mapping[str, str]) -> tuple[str, int, list[bytes]]:
    lower = {name.lower(): value for name, value in headers.items()}
    missing = [n for n in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lower.get(n)]
    if missing:
        raise WebhookHeaderError(f"missing header {', '.join(missing)}; is this a Standard Webhooks request?")
    stamp = lower["webhook-timestamp"].strip()
    if not stamp.isdigit() or len(stamp) > 12:
        raise WebhookHeaderError(f"webhook-timestamp {stamp[:20]!r} is not whole seconds since 1970")
    signatures = []
    for entry in lower["webhook-signature"].split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue  # v1a (ed25519) or a future scheme: not ours to check
        try:
            signatures.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            raise WebhookHeaderError(f"webhook-signature entry {entry[:60]!r} is not base64") from None
    if not signatures:
        raise WebhookHeaderError("webhook-signature carries no 'v1,<base64>' signature")
    return lower["webhook-id"], int(stamp), signatures


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> Any:
    """The parsed JSON body of a genuine webhook; raises ``WebhookVerificationError`` otherwise.

    Refuses a missing or malformed header, a wrong or forged signature, and a
    timestamp more than ``tolerance`` seconds from now (a replay). Raises
    ``WebhookSecretError`` for a malformed ``secret``. Receivers should still
    dedupe on ``webhook-id``: mailbeacon delivers at least once.

        event = mailbeacon.webhooks.verify(await request.body(), request.headers, SECRET)
    """
    key = _key(secret)
    msg_id, stamp, signatures = _headers(headers)
    now = time.time() if now is None else now
    if abs(now - stamp) > tolerance:
        when = "too old" if stamp < now else "too far in the future"
        raise WebhookTimestampError(
            f"webhook-timestamp {stamp} is {when} ({abs(now - stamp):.0f} s from now, tolerance "
            f"{tolerance:g} s): a replayed request, or a clock that is wrong"
        )
    try:
        body = payload.decode() if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        raise WebhookSignatureError("the body is not UTF-8, so it is not what was signed") from None
    expected = Webhook(key).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body)
    digest = base64.b64decode(expected.split(",", 1)[1])
    # compare_digest on every candidate: the time taken says nothing about how close a forgery got.
    if not any([hmac.compare_digest(digest, candidate) for candidate in signatures]):  # noqa: C419
        raise WebhookSignatureError(
            "no signature matches this body with this secret: a forged or altered request, "
            "or the endpoint's secret was rotated (use the new one)"
        )
    return json.loads(body)
