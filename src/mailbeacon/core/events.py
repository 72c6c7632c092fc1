"""The event vocabulary: what can happen to a message, and what a hit looked like.

Everything that happens to a message is an append-only event named in the past
tense (``EventType.OPENED == "opened"``). Engagement events (``fetched``,
``opened``, ``clicked``, ``read``, ``unsubscribed``) carry a ``Verdict``: was
it a person, a machine, or can we not tell, and why. The verdict is computed
from ``RequestFacts`` by a classifier; this module only names the shapes, so
that the server, the store and the classifier agree without importing each
other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = [
    "DELIVERY_TYPES",
    "ENGAGEMENT_TYPES",
    "UNKNOWN",
    "Classification",
    "EventType",
    "RequestFacts",
    "Verdict",
]


class EventType(StrEnum):
    """What happened. Webhook and stream types are ``message.<value>``."""

    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    FAILED = "failed"
    FETCHED = "fetched"  # the pixel was fetched and we cannot say a person saw it (yet)
    OPENED = "opened"
    CLICKED = "clicked"
    READ = "read"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"


# What the sending application reports (POST /api/v1/messages/{id}/events).
DELIVERY_TYPES: Final = frozenset(
    {EventType.DELIVERED, EventType.DEFERRED, EventType.BOUNCED, EventType.FAILED, EventType.COMPLAINED}
)
# What a tracking hit records; each carries a Verdict.
ENGAGEMENT_TYPES: Final = frozenset(
    {EventType.FETCHED, EventType.OPENED, EventType.CLICKED, EventType.READ, EventType.UNSUBSCRIBED}
)


class Classification(StrEnum):
    """Who caused an engagement event."""

    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classification, the machine-readable reasons for it, and how sure it is (0..1)."""

    classification: Classification
    reasons: tuple[str, ...] = ()
    confidence: float = 0.0


UNKNOWN: Final = Verdict(Classification.UNKNOWN, (), 0.0)
"""The verdict when nothing was examined."""


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a tracking request looked like, as far as classification needs it.

    ``headers`` has lower-cased names and holds only the headers a classifier
    reads (see ``CLASSIFIER_HEADERS`` in the server). Times are Unix seconds;
    ``sent_at`` and ``delivered_at`` are None when unknown. ``ip`` is the client
    address after trusted-proxy resolution, or None at privacy level ``minimal``.
    ``honeypot`` is true for the hidden link the rewriter can add: only machines follow it.
    """

    kind: str  # "open", "click" or "unsubscribe"
    method: str  # "GET", "HEAD", "POST"
    at: float
    user_agent: str | None = None
    ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    sent_at: float | None = None
    delivered_at: float | None = None
    link: int | None = None
    honeypot: bool = False
