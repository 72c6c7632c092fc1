"""The JSON shapes of the REST API (pydantic): what ``/openapi.json`` documents.

Inputs forbid unknown fields, so a typo (``"campain"``) is a 422 naming the
field rather than silently ignored data.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)

__all__ = [
    "EventIn",
    "EventOut",
    "MessageCreated",
    "MessageIn",
    "MessageList",
    "MessageOut",
    "Problem",
    "Timestamp",
    "to_time",
]

_ID_PATTERN = r"^[A-Za-z0-9._:@+=-]{1,128}$"
_NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: a 422 naming the field, not a 500
MessageId = Annotated[str, StringConstraints(pattern=_ID_PATTERN)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Recipient = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$")]


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    # pydantic would also take 0.5 or "1700000000" as a time; the API documents RFC 3339 only.
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("must be an RFC 3339 time with a time zone, e.g. 2026-01-31T12:00:00Z")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]


def to_time(at: float | None) -> datetime | None:
    return datetime.fromtimestamp(at, UTC) if at is not None else None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None


class MessageIn(_In):
    """A message the application is about to send."""

    id: MessageId | None = Field(None, description="Your own id; a time-ordered id is generated if absent.")
    channel: Literal["email", "chat", "inapp"] = "email"
    recipient: Recipient = Field(description="Who receives it; an address or your own recipient id.")
    subject: Annotated[str, StringConstraints(max_length=998, pattern=_NO_NUL)] | None = None
    html: str | None = Field(None, description="HTML body to track; returned with links and pixel added.")
    text: str | None = Field(None, description="Plain-text body; its bare URLs are tracked.")
    campaign: Text200 | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Kept with the message, not put in links."
    )
    honeypot: StrictBool = Field(
        False, description="Add a hidden link only machines follow; a click on it exposes a scanner."
    )


class LinkOut(BaseModel):
    index: int
    url: str


class MessageCreated(BaseModel):
    id: str
    recipient: str
    open_url: str
    unsubscribe_url: str
    html: str | None = None
    text: str | None = None
    links: list[LinkOut]
    warnings: list[str] = []


class EventOut(BaseModel):
    seq: int
    type: str
    at: datetime
    recipient: str
    classification: Literal["human", "machine", "unknown"]
    reasons: list[str]
    confidence: float
    link: int | None = None
    url: str | None = None
    event_id: str | None = None
    detail: dict[str, Any] | None = None
    ip: str | None = Field(None, description="As kept at the server's privacy level (MAILBEACON_PRIVACY).")
    user_agent: str | None = None


class RecipientOut(BaseModel):
    recipient: str
    status: str
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    first_fetched_at: datetime | None = None
    first_open_at: datetime | None = None
    first_human_open_at: datetime | None = None
    first_click_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    complained_at: datetime | None = None


class MessageSummary(BaseModel):
    id: str
    channel: str
    subject: str | None = None
    campaign: str | None = None
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    registered: bool = Field(description="False for a message first seen through a link minted offline.")
    status: str
    first_fetched_at: datetime | None = Field(
        None, description="The first open or click of any kind, machines included."
    )
    first_human_open_at: datetime | None = Field(
        None, description="The first open (or click) classified as a person's, after revision."
    )
    recipients: list[RecipientOut]


class MessageOut(MessageSummary):
    links: list[LinkOut]
    events: list[EventOut]


class PreviewIn(_In):
    html: str = Field(description="The tracked HTML, as POST /api/v1/messages returned it.")


class PreviewOut(BaseModel):
    html: str = Field(
        description="The same HTML without pixel and honeypot, links pointing at their destinations."
    )
    pixels_removed: int
    links_untracked: int


class MessageList(BaseModel):
    data: list[MessageSummary]
    next_cursor: str | None = None


class EventIn(_In):
    """A delivery outcome the application learned from its mail provider."""

    type: Literal["delivered", "deferred", "bounced", "failed", "complained"]
    recipient: Recipient | None = Field(None, description="Defaults to the message's only recipient.")
    at: Timestamp | None = Field(None, description="When it happened (RFC 3339); defaults to now.")
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=_NO_NUL)] | None = Field(
        None, description="Your id for this event: reporting it again changes nothing (idempotent)."
    )
    detail: dict[str, Any] | None = Field(None, description="Anything to keep with it (bounce code, ...).")


class Split(BaseModel):
    human: int
    machine: int
    unknown: int
    all: int


class Counts(BaseModel):
    total: Split
    unique: Split


class LinkStats(BaseModel):
    url: str | None
    clicks: Counts


class GroupStats(BaseModel):
    campaign: str | None = None
    tag: str | None = None
    sent: int
    delivered: int
    opened_by_person: int = Field(description="Recipients a person opened (or clicked), after revision.")
    fetched: int = Field(description="Recipients with any open or click, machines included.")
    open_rate: float | None = Field(
        description="opened_by_person / delivered (or / sent while none is reported): people only."
    )
    opens: Counts
    clicks: Counts
    links: list[LinkStats]


class TotalStats(BaseModel):
    sent: int
    delivered: int
    opened_by_person: int = Field(description="Recipients a person opened (or clicked), after revision.")
    fetched: int = Field(description="Recipients with any open or click, machines included.")
    open_rate: float | None = Field(
        description="opened_by_person / delivered (or / sent while none is reported): people only."
    )
    opens: Counts
    clicks: Counts


class StatsOut(BaseModel):
    group_by: Literal["campaign", "tag"]
    groups: list[GroupStats]
    totals: TotalStats
