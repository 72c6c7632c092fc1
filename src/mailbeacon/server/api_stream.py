"""``GET /api/v1/stream`` (SSE) and ``POST /api/v1/stream/tokens`` (tokens for browsers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from mailbeacon.core.keys import KeyRing
from mailbeacon.server.api import _ERRORS, Account, Ctx
from mailbeacon.server.problems import ProblemError
from mailbeacon.server.schemas_webhooks import StreamTokenIn, StreamTokenOut
from mailbeacon.server.stream import sse_events
from mailbeacon.server.stream_tokens import mint_stream_token, read_stream_token, stream_filter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/stream", tags=["stream"], responses=_ERRORS)
_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="mailbeacon"'}


@router.post("/tokens", status_code=201, response_model=StreamTokenOut, summary="Mint a stream token")
async def create_stream_token(body: StreamTokenIn, account: Account, ctx: Ctx) -> StreamTokenOut:
    assert isinstance(ctx.keys, KeyRing)
    scope = body.model_dump(exclude={"ttl_seconds"}, exclude_none=True)
    if not scope.get("types"):
        scope.pop("types", None)
    token, expires = mint_stream_token(ctx.keys, account, body.ttl_seconds, scope)
    return StreamTokenOut(token=token, expires_at=datetime.fromtimestamp(expires, UTC))


async def _caller(request: Request, ctx: Ctx, token: str | None) -> tuple[str, dict[str, object]]:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential:
        if credential.startswith("mbs1."):
            token = credential
        else:
            account = await run_in_threadpool(ctx.authenticate, credential.strip())
            if account is None:
                raise ProblemError(401, "this API key is unknown or revoked", headers=_UNAUTHORIZED)
            return account, {}
    if token is None:
        raise ProblemError(
            401,
            "send an API key as 'Authorization: Bearer <key>', or a stream token as ?token=",
            headers=_UNAUTHORIZED,
        )
    assert isinstance(ctx.keys, KeyRing)
    found = read_stream_token(ctx.keys, token)
    if found is None:
        raise ProblemError(
            401, "this stream token is invalid or expired; mint a new one", headers=_UNAUTHORIZED
        )
    return found


@router.get(
    "",
    summary="Live events (Server-Sent Events); resume with Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
)
async def stream(
    request: Request,
    ctx: Ctx,
    message: Annotated[str | None, Query(max_length=128)] = None,
    campaign: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    type: Annotated[list[str] | None, Query(max_length=11)] = None,
    token: Annotated[str | None, Query(max_length=2000)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    account, scope = await _caller(request, ctx, token)
    # A token's scope wins over the query: a browser cannot widen what it was given.
    where = stream_filter(account, scope, message=message, campaign=campaign, tag=tag, types=type)
    resume = request.query_params.get("last_event_id") or last_event_id
    last_id = None
    if resume:
        if not resume.isdigit():
            message_ = "Last-Event-ID must be an event id (a whole number) from this stream"
            raise ProblemError(400, message_, errors=[{"field": "Last-Event-ID", "message": message_}])
        last_id = int(resume)
    if ctx.hub is None:
        raise ProblemError(503, "the stream is not running yet; retry in a moment")
    return StreamingResponse(
        sse_events(ctx.hub, ctx.store.engine, where, last_id, ctx.stream_heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
