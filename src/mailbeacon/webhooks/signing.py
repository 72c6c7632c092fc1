"""Standard Webhooks signatures: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The signature is ``v1,`` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")),
computed by the ``standardwebhooks`` library so receivers can use any
Standard Webhooks verifier. During a secret rotation the header carries one
signature per secret, separated by spaces; a receiver accepts any of them.
The timestamp is part of what is signed, and ``verify`` refuses one more than
five minutes away from now: a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

__all__ = ["WebhookVerificationError", "new_secret", "sign_headers", "verify"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_headers(msg_id: str, timestamp: int, body: str, secrets_: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed with each of ``secrets_``."""
    when = datetime.fromtimestamp(timestamp, UTC)
    signatures = " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets_)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> Any:
    """The parsed JSON body of a genuine webhook; raises ``WebhookVerificationError`` otherwise.

    Refuses a missing header, a wrong or forged signature, and a timestamp more
    than five minutes from now (a replay). Receivers should still dedupe on
    ``webhook-id``: mailbeacon delivers at least once.

        event = mailbeacon.webhooks.verify(await request.body(), request.headers, SECRET)
    """
    return Webhook(secret).verify(payload, dict(headers.items()))
