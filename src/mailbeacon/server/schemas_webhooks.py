"""JSON shapes of the webhook endpoints API and of stream tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AnyUrl, BaseModel, ConfigDict, Field

from mailbeacon.server.schemas import MessageId, Tag, Text200, Timestamp

__all__ = [
    "AttemptList",
    "AttemptOut",
    "EndpointIn",
    "EndpointList",
    "EndpointOut",
    "EndpointPatch",
    "ReplayIn",
    "ReplayOut",
    "RotateIn",
    "StreamTokenIn",
    "StreamTokenOut",
]

EventType = Literal[
    "sent",
    "delivered",
    "deferred",
    "bounced",
    "failed",
    "fetched",
    "opened",
    "clicked",
    "read",
    "unsubscribed",
    "complained",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointIn(_In):
    url: Annotated[AnyUrl, Field(description="https URL resolving to public addresses only")]
    types: list[EventType] = Field(default_factory=list, description="Event types to send; empty: all")
    campaign: Text200 | None = Field(None, description="Only events of this campaign's messages")
    description: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] | None = None


class EndpointPatch(_In):
    url: AnyUrl | None = None
    types: list[EventType] | None = None
    campaign: Text200 | None = None
    description: Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")] | None = None
    enabled: bool | None = Field(None, description="false disables; true re-enables (clears the reason)")


class EndpointOut(BaseModel):
    id: str
    url: str
    types: list[str]
    campaign: str | None
    description: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(None, description="whsec_...; shown when created and when rotated")
    deliveries: dict[str, int] = Field(default_factory=dict, description="Deliveries per state")


class EndpointList(BaseModel):
    data: list[EndpointOut]


class RotateIn(_In):
    overlap_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = 86400


class AttemptOut(BaseModel):
    webhook_id: str
    event_seq: int | None
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    delivery_state: str


class AttemptList(BaseModel):
    data: list[AttemptOut]


class ReplayIn(_In):
    since: Timestamp
    until: Timestamp


class ReplayOut(BaseModel):
    queued: int


class StreamTokenIn(_In):
    ttl_seconds: Annotated[int, Field(ge=10, le=86400)] = 3600
    message: MessageId | None = None
    campaign: Text200 | None = None
    tag: Tag | None = None
    types: list[EventType] = Field(default_factory=list)


class StreamTokenOut(BaseModel):
    token: str
    expires_at: datetime
