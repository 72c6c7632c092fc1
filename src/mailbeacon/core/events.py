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
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, NamedTuple

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


_NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})


class RequestFacts(NamedTuple):
    """What a tracking request looked like, as far as classification needs it.

    ``headers`` has lower-cased names and holds only the headers a classifier
    reads (see ``CLASSIFIER_HEADERS`` in the server). Times are Unix seconds;
    ``sent_at`` and ``delivered_at`` are None when unknown. ``ip`` is the client
    address after trusted-proxy resolution, or None at privacy level ``minimal``.
    ``honeypot`` is true for the hidden link the rewriter can add: only machines follow it.

    A named tuple, not a frozen dataclass: the hit path builds one per hit, and a frozen
    dataclass's ``__init__`` sets each of the ten fields through ``object.__setattr__``,
    ~2.5 µs of a hit's ~20 against ~0.5 for this built positionally, ~0.3 from a whole
    tuple as the hit path builds it (``benchmarks/hit_cost.py``). It is as immutable;
    ``_replace`` makes a changed copy.
    """

    kind: str  # "open", "click" or "unsubscribe"
    method: str  # "GET", "HEAD", "POST"
    at: float
    user_agent: str | None = None
    ip: str | None = None
    headers: Mapping[str, str] = _NO_HEADERS
    sent_at: float | None = None
    delivered_at: float | None = None
    link: int | None = None
    honeypot: bool = False
