"""``/api/v1/webhooks``: endpoints, secrets, test sends, attempts and replays.

Every URL goes through the SSRF check (``webhooks.ssrf``) on create and on
update, and the worker checks it again before each attempt. Another
account's endpoint is a 404, exactly like a missing one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from mailbeacon.server.api import _ERRORS, Account, Ctx, _timestamp
from mailbeacon.server.problems import ProblemError
from mailbeacon.server.schemas_webhooks import (
    AttemptList,
    AttemptOut,
    EndpointIn,
    EndpointList,
    EndpointOut,
    EndpointPatch,
    ReplayIn,
    ReplayOut,
    RotateIn,
)
from mailbeacon.store import Endpoint
from mailbeacon.webhooks.ssrf import UnsafeURL, resolve_target

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=_ERRORS)


def _utc(at: float | None) -> datetime | None:
    return datetime.fromtimestamp(at, UTC) if at is not None else None


def _out(endpoint: Endpoint, *, secret: bool = False, counts: dict[str, int] | None = None) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        types=list(endpoint.types),
        campaign=endpoint.campaign,
        description=endpoint.description,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=_utc(endpoint.failing_since),
        created_at=_utc(endpoint.created_at),  # type: ignore[arg-type]
        updated_at=_utc(endpoint.updated_at),  # type: ignore[arg-type]
        secret=endpoint.secret if secret else None,
        deliveries=counts or {},
    )


async def _safe_url(url: str, ctx: Ctx) -> str:
    try:
        await run_in_threadpool(resolve_target, url, allow_private=ctx.webhook_allow_private)
    except UnsafeURL as exc:
        raise ProblemError(422, str(exc), errors=[{"field": "url", "message": str(exc)}]) from None
    return url


async def _endpoint(ctx: Ctx, account: str, endpoint_id: str) -> Endpoint:
    found = await run_in_threadpool(ctx.store.endpoints.get, account, endpoint_id)
    if found is None:
        raise ProblemError(404, f"no webhook endpoint {endpoint_id!r} in this account")
    return found


@router.post("", status_code=201, response_model=EndpointOut, summary="Add an endpoint (returns its secret)")
async def create_endpoint(body: EndpointIn, account: Account, ctx: Ctx) -> EndpointOut:
    url = await _safe_url(str(body.url), ctx)
    endpoint = await run_in_threadpool(
        ctx.store.endpoints.create,
        account,
        url,
        list(dict.fromkeys(body.types)),
        campaign=body.campaign,
        description=body.description,
    )
    return _out(endpoint, secret=True)


@router.get("", response_model=EndpointList, summary="This account's endpoints")
async def list_endpoints(account: Account, ctx: Ctx) -> EndpointList:
    found = await run_in_threadpool(ctx.store.endpoints.list, account)
    return EndpointList(data=[_out(endpoint) for endpoint in found])


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="One endpoint and its delivery counts")
async def get_endpoint(endpoint_id: str, account: Account, ctx: Ctx) -> EndpointOut:
    endpoint = await _endpoint(ctx, account, endpoint_id)
    counts = await run_in_threadpool(ctx.store.deliveries.counts, endpoint.id)
    return _out(endpoint, counts=counts)


@router.patch("/{endpoint_id}", response_model=EndpointOut, summary="Change, disable or re-enable")
async def update_endpoint(endpoint_id: str, body: EndpointPatch, account: Account, ctx: Ctx) -> EndpointOut:
    await _endpoint(ctx, account, endpoint_id)
    values: dict[str, Any] = body.model_dump(exclude_unset=True)
    if values.get("url") is not None:
        values["url"] = await _safe_url(str(body.url), ctx)
    if values.get("enabled") is True:
        values.update(disabled_reason=None, failing_since=None)
    elif values.get("enabled") is False:
        values["disabled_reason"] = "disabled through the API"
    values = {k: v for k, v in values.items() if v is not None or k not in ("url", "types", "enabled")}
    updated = await run_in_threadpool(ctx.store.endpoints.update, account, endpoint_id, **values)
    if updated is None:
        raise ProblemError(404, f"no webhook endpoint {endpoint_id!r} in this account")
    return _out(updated)


@router.delete("/{endpoint_id}", status_code=204, summary="Delete (pending deliveries are dropped)")
async def delete_endpoint(endpoint_id: str, account: Account, ctx: Ctx) -> Response:
    if not await run_in_threadpool(ctx.store.endpoints.delete, account, endpoint_id):
        raise ProblemError(404, f"no webhook endpoint {endpoint_id!r} in this account")
    return Response(status_code=204)


@router.post(
    "/{endpoint_id}/rotate",
    response_model=EndpointOut,
    summary="New secret; the old one still signs during the overlap",
)
async def rotate_secret(
    endpoint_id: str, account: Account, ctx: Ctx, body: RotateIn | None = None
) -> EndpointOut:
    overlap = (body or RotateIn()).overlap_seconds
    rotated = await run_in_threadpool(ctx.store.endpoints.rotate, account, endpoint_id, overlap)
    if rotated is None:
        raise ProblemError(404, f"no webhook endpoint {endpoint_id!r} in this account")
    return _out(rotated, secret=True)


@router.post("/{endpoint_id}/test", status_code=202, summary="Send a test event (message.test)")
async def send_test(endpoint_id: str, account: Account, ctx: Ctx) -> dict[str, str]:
    endpoint = await _endpoint(ctx, account, endpoint_id)
    # Checked again here: the test button is an SSRF surface too (Canarytokens GHSA-g6h5-pf7p-qmvj).
    await _safe_url(endpoint.url, ctx)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = json.dumps({"type": "message.test", "timestamp": now, "data": {"endpoint_id": endpoint.id}})
    delivery = await run_in_threadpool(ctx.store.deliveries.add_test, account, endpoint.id, body)
    ctx.deliveries_queued()
    return {"webhook_id": delivery}


@router.get("/{endpoint_id}/attempts", response_model=AttemptList, summary="Recent attempts, newest first")
async def list_attempts(endpoint_id: str, account: Account, ctx: Ctx) -> AttemptList:
    await _endpoint(ctx, account, endpoint_id)
    found = await run_in_threadpool(ctx.store.deliveries.attempts, account, endpoint_id)
    return AttemptList(
        data=[
            AttemptOut(
                webhook_id=a.delivery_id,
                event_seq=a.event_seq,
                at=_utc(a.at),  # type: ignore[arg-type]
                status_code=a.status_code,
                error=a.error,
                duration_ms=round(a.duration * 1000, 1),
                delivery_state=a.state,
            )
            for a in found
        ]
    )


@router.post(
    "/{endpoint_id}/replay", status_code=202, response_model=ReplayOut, summary="Send a time range again"
)
async def replay(endpoint_id: str, body: ReplayIn, account: Account, ctx: Ctx) -> ReplayOut:
    endpoint = await _endpoint(ctx, account, endpoint_id)
    since, until = _timestamp(body.since, "since"), _timestamp(body.until, "until")
    assert since is not None
    assert until is not None
    if until <= since or until - since > 31 * 86400:
        message = "until must be after since, at most 31 days later"
        raise ProblemError(422, message, errors=[{"field": "until", "message": message}])
    queued = await run_in_threadpool(
        ctx.store.deliveries.replay, account, endpoint.id, since, until, endpoint.types, endpoint.campaign
    )
    if queued:
        ctx.deliveries_queued()
    return ReplayOut(queued=queued)
