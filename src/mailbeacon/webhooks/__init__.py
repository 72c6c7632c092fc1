"""Signed webhooks (Standard Webhooks): what receivers need, and the delivery machinery.

Receivers only need ``verify``::

    from mailbeacon.webhooks import verify
    event = verify(body_bytes, request.headers, "whsec_...")

The server side lives in the submodules: ``ssrf`` (where a webhook may go),
``policy`` (retry schedule and body), ``sender`` (one attempt),
``worker`` (the delivery loop). Importing this package loads only signing.
"""

from __future__ import annotations

from mailbeacon.webhooks.signing import (
    WebhookHeaderError,
    WebhookSecretError,
    WebhookSignatureError,
    WebhookTimestampError,
    WebhookVerificationError,
    new_secret,
    sign_headers,
    verify,
)

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
