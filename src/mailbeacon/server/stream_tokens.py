"""Stream tokens: short-lived, read-only, scoped credentials for ``EventSource`` (``?token=``).

A browser's ``EventSource`` cannot send an ``Authorization`` header, and an
API key must never reach a browser. The sender's backend mints a token with
its API key; the token names the account, an expiry and optional filters,
and is MACed with the server's active key (under its own label, so it can
never pass for a tracking token). It is accepted by ``/api/v1/stream``
only, and its filters cannot be widened by query parameters.

    mbs1.<base64url(JSON claims)>.<base64url(MAC)>
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from mailbeacon.core.keys import KeyRing
from mailbeacon.server.stream import StreamFilter

__all__ = ["PREFIX", "mint_stream_token", "read_stream_token", "stream_filter"]

PREFIX = "mbs1."
_LABEL = b"mailbeacon/v1/stream-token:"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_stream_token(keys: KeyRing, account: str, ttl: float, scope: dict[str, Any]) -> tuple[str, float]:
    expires = time.time() + ttl
    claims = {"k": keys.active.id, "a": account, "e": int(expires), "s": scope}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    tag = keys.active.mac(_LABEL + body.encode())
    return f"{PREFIX}{body}.{_b64(tag)}", float(int(expires))


def read_stream_token(
    keys: KeyRing, token: str, now: float | None = None
) -> tuple[str, dict[str, Any]] | None:
    """(account, scope) of a genuine, unexpired token; None otherwise."""
    if not token.startswith(PREFIX):
        return None
    try:
        body, tag_text = token[len(PREFIX) :].split(".")
        claims = json.loads(_unb64(body))
        tag = _unb64(tag_text)
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None
    key = keys.get(str(claims.get("k")))
    # A full-length tag only; verify() compares in constant time.
    if key is None or len(tag) != 32 or not key.verify(_LABEL + body.encode(), tag):
        return None
    if not isinstance(claims.get("e"), int) or claims["e"] < (time.time() if now is None else now):
        return None
    scope = claims.get("s")
    return str(claims["a"]), scope if isinstance(scope, dict) else {}


def stream_filter(
    account: str,
    scope: dict[str, Any],
    *,
    message: str | None = None,
    campaign: str | None = None,
    tag: str | None = None,
    types: list[str] | None = None,
) -> StreamFilter:
    """What a stream sends: the query's filters, except where the token's scope binds them.

    A field the token names wins over the query (a browser cannot widen what it
    was given); a field it leaves open may be narrowed by the query. The account
    always comes from the credential, never from the request.
    """
    bound = scope.get("types")
    chosen = [str(t) for t in bound] if isinstance(bound, list) and bound else (types or [])
    return StreamFilter(
        account=account,
        message=str(scope["message"]) if "message" in scope else message,
        campaign=str(scope["campaign"]) if "campaign" in scope else campaign,
        tag=str(scope["tag"]) if "tag" in scope else tag,
        types=frozenset(chosen),
    )
