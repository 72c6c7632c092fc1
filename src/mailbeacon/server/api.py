"""The REST API under ``/api/v1``: thin shells over the store.

Each endpoint parses its input (pydantic), calls the core or the store, and
shapes the answer. The caller's account comes from its bearer key and scopes
every query: another account's message is a 404, exactly like a missing one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from mailbeacon.core.status import RecipientState, Status
from mailbeacon.server.context import ServerContext
from mailbeacon.server.problems import ProblemError
from mailbeacon.server.schemas import (
    EventIn,
    EventOut,
    LinkOut,
    MessageCreated,
    MessageIn,
    MessageList,
    MessageOut,
    MessageSummary,
    PreviewIn,
    PreviewOut,
    Problem,
    RecipientOut,
    StatsOut,
    Timestamp,
    to_time,
)
from mailbeacon.store import (
    BadCursor,
    DuplicateMessage,
    EventRow,
    EventView,
    MessageFilter,
    MessageRecord,
    MessageView,
    StatsFilter,
)
from mailbeacon.store.ids import new_id

__all__ = ["router"]

_bearer = HTTPBearer(auto_error=False, description="An API key from `mailbeacon apikey create NAME`.")


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "content": {"application/problem+json": {}}, "description": description}


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: _problem(phrase)
    for status, phrase in (
        (400, "Malformed request"),
        (401, "Missing or unknown API key"),
        (404, "No such message in this account"),
        (413, "Body too large"),
        (422, "A field is invalid"),
    )
}

router = APIRouter(prefix="/api/v1", responses=_ERRORS)
# PostgreSQL refuses NUL in text: a filter holding one is a 422, not a database error.
_NO_NUL = r"^[^\x00]*$"


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.mailbeacon
    return ctx


async def account_of(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    unauthorized = {"WWW-Authenticate": 'Bearer realm="mailbeacon"'}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ProblemError(401, "send an API key as 'Authorization: Bearer <key>'", headers=unauthorized)
    account = await run_in_threadpool(context(request).authenticate, credentials.credentials)
    if account is None:
        raise ProblemError(
            401,
            "this API key is unknown or revoked; create one with `mailbeacon apikey create`",
            headers=unauthorized,
        )
    return account


Account = Annotated[str, Depends(account_of)]
Ctx = Annotated[ServerContext, Depends(context)]


def _recipient_out(recipient: str, state: RecipientState) -> RecipientOut:
    values: dict[str, Any] = {
        name: to_time(value) for name, value in asdict(state).items() if name != "status"
    }
    return RecipientOut(recipient=recipient, status=state.status.value, **values)


def _event_out(event: EventView) -> EventOut:
    return EventOut(
        seq=event.seq,
        type=event.type,
        at=_utc(event.at),
        recipient=event.recipient,
        classification=event.classification,  # type: ignore[arg-type]
        reasons=list(event.reasons),
        confidence=event.confidence,
        link=event.link,
        url=event.url,
        event_id=event.event_id,
        detail=event.detail,
        ip=event.ip,
        user_agent=event.user_agent,
    )


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _summary_fields(view: MessageView) -> dict[str, Any]:
    message = view.message
    return {
        "id": message.id,
        "channel": message.channel,
        "subject": message.subject,
        "campaign": message.campaign,
        "tags": list(message.tags),
        "metadata": message.metadata,
        "created_at": to_time(message.created_at),
        "registered": message.registered,
        "status": view.status.value,
        "first_fetched_at": _first(view, "first_fetched_at"),
        "first_human_open_at": _first(view, "first_human_open_at"),
        "recipients": [_recipient_out(name, state) for name, state in view.recipients.items()],
    }


def _first(view: MessageView, name: str) -> datetime | None:
    times = [t for state in view.recipients.values() if (t := getattr(state, name)) is not None]
    return to_time(min(times)) if times else None


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="The sender's own view: tracked HTML with pixel and tracking removed",
)
async def preview(body: PreviewIn, account: Account, ctx: Ctx) -> PreviewOut:
    # Showing the sender its own message through this endpoint fires no pixel and no link,
    # so "viewed" keeps meaning the recipient (reason sender_own_view covers the other way in).
    from mailbeacon.server.preview import untrack_html

    owner = None if account == ctx.default_account else account
    result = untrack_html(body.html, ctx.tracker(account), owner)
    return PreviewOut(
        html=result.html, pixels_removed=result.pixels_removed, links_untracked=result.links_untracked
    )


@router.post(
    "/messages",
    status_code=201,
    response_model=MessageCreated,
    summary="Register and track a message",
    responses={409: _problem("A message with this id exists in this account")},
)
async def create_message(body: MessageIn, account: Account, ctx: Ctx) -> MessageCreated:
    message_id = body.id or new_id()
    tracked = ctx.track(account, message_id, body.recipient, body.html, body.text, honeypot=body.honeypot)
    record = MessageRecord(
        account_id=account,
        id=message_id,
        channel=body.channel,
        subject=body.subject,
        campaign=body.campaign,
        tags=tuple(dict.fromkeys(body.tags)),
        metadata=body.metadata,
        created_at=time.time(),
    )
    try:
        await run_in_threadpool(ctx.store.messages.register, record, [body.recipient], tracked.links)
    except DuplicateMessage:
        raise ProblemError(
            409, f"message id {message_id!r} exists already in this account; pick another id"
        ) from None
    return MessageCreated(
        id=message_id,
        recipient=body.recipient,
        open_url=tracked.open_url,
        unsubscribe_url=tracked.unsubscribe_url,
        html=tracked.html,
        text=tracked.text,
        links=[LinkOut(index=i, url=url) for i, url in tracked.links],
        warnings=tracked.warnings,
    )


@router.get(
    "/messages/{message_id}", response_model=MessageOut, summary="A message, its status and its events"
)
async def get_message(message_id: str, account: Account, ctx: Ctx) -> MessageOut:
    await ctx.ingestion.caught_up()  # hits answered before this read are in it
    view = await run_in_threadpool(ctx.store.messages.get, account, message_id)
    if view is None:
        raise ProblemError(404, f"no message {message_id!r} in this account")
    return MessageOut(
        **_summary_fields(view),
        links=[LinkOut(index=i, url=url) for i, url in sorted(view.links.items())],
        events=[_event_out(event) for event in view.events],
    )


@router.get("/messages", response_model=MessageList, summary="Messages, newest first, with filters")
async def list_messages(
    account: Account,
    ctx: Ctx,
    status: Status | None = None,
    campaign: Annotated[str | None, Query(max_length=200, pattern=_NO_NUL)] = None,
    tag: Annotated[str | None, Query(max_length=100, pattern=_NO_NUL)] = None,
    recipient: Annotated[str | None, Query(max_length=320, pattern=_NO_NUL)] = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
) -> MessageList:
    await ctx.ingestion.caught_up()
    where = MessageFilter(
        status=status,
        campaign=campaign,
        tag=tag,
        recipient=recipient,
        created_after=_timestamp(created_after, "created_after"),
        created_before=_timestamp(created_before, "created_before"),
    )
    try:
        views, next_cursor = await run_in_threadpool(
            ctx.store.messages.page, account, where, limit=limit, cursor=cursor
        )
    except BadCursor as exc:
        raise ProblemError(400, str(exc), errors=[{"field": "cursor", "message": str(exc)}]) from None
    return MessageList(
        data=[MessageSummary(**_summary_fields(view)) for view in views], next_cursor=next_cursor
    )


def _timestamp(value: datetime | None, name: str) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        message = "give a time zone, e.g. 2026-01-31T12:00:00Z"
        raise ProblemError(422, f"{name}: {message}", errors=[{"field": name, "message": message}])
    return value.timestamp()


@router.post(
    "/messages/{message_id}/events",
    status_code=201,
    response_model=EventOut,
    summary="Report a delivery outcome (idempotent on event_id)",
    responses={200: {"model": EventOut, "description": "This event_id was reported before; nothing changed"}},
)
async def report_event(
    message_id: str, body: EventIn, account: Account, ctx: Ctx, response: Response
) -> EventOut:
    view = await run_in_threadpool(ctx.store.messages.get, account, message_id)
    if view is None:
        raise ProblemError(404, f"no message {message_id!r} in this account")
    recipient = _pick_recipient(body.recipient, view)
    if body.event_id is not None:
        earlier = await run_in_threadpool(ctx.store.messages.find_event, account, message_id, body.event_id)
        if earlier is not None:
            response.status_code = 200
            return _event_out(earlier)
    # Without the caller's id the server names the event, so it can be read back (and shown).
    event_id = body.event_id or "evt_" + new_id()
    at = _timestamp(body.at, "at") if body.at is not None else time.time()
    assert at is not None
    row = EventRow(
        account_id=account,
        message_id=message_id,
        recipient=recipient,
        type=body.type,
        at=at,
        event_id=event_id,
        detail=json.dumps(body.detail, ensure_ascii=False) if body.detail is not None else None,
    )
    if not await ctx.store.recorder.record(row):
        raise ProblemError(503, "the event could not be stored; retry with the same event_id")
    stored = await run_in_threadpool(ctx.store.messages.find_event, account, message_id, event_id)
    if stored is None:  # pragma: no cover - committed just above; only a concurrent delete could do this
        raise ProblemError(503, "the event could not be read back; retry with the same event_id")
    return _event_out(stored)


def _pick_recipient(given: str | None, view: MessageView) -> str:
    if given is not None:
        if given not in view.recipients:
            message = f"{given!r} is not a recipient of this message"
            raise ProblemError(422, message, errors=[{"field": "recipient", "message": message}])
        return given
    if len(view.recipients) != 1:
        message = "this message has several recipients; say which one"
        raise ProblemError(422, message, errors=[{"field": "recipient", "message": message}])
    return next(iter(view.recipients))


@router.get("/stats", response_model=StatsOut, summary="Totals per campaign or tag, and per link")
async def stats(
    account: Account,
    ctx: Ctx,
    campaign: Annotated[str | None, Query(max_length=200, pattern=_NO_NUL)] = None,
    tag: Annotated[str | None, Query(max_length=100, pattern=_NO_NUL)] = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    group_by: Literal["campaign", "tag"] = "campaign",
) -> dict[str, Any]:
    await ctx.ingestion.caught_up()
    where = StatsFilter(
        campaign=campaign,
        tag=tag,
        since=_timestamp(since, "since"),
        until=_timestamp(until, "until"),
        group_by=group_by,
    )
    result: dict[str, Any] = await run_in_threadpool(ctx.store.stats.stats, account, where)
    return result
