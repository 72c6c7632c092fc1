"""A recipient's status, derived from its events. The rules:

1. Status only moves forward: ``sent < deferred < delivered < opened < clicked``.
2. ``bounced`` and ``failed`` are terminal: once seen, nothing moves the status
   again (a later open of a bounced message is a machine or a mistake).
3. A click implies an open: a clicked recipient counts as opened, and its
   ``first_open_at`` is at the latest the click's time.
4. A machine event never advances the status: a pixel fetched by Apple's proxy
   or a link followed by a scanner sets ``first_fetched_at`` and nothing else.
   ``unknown`` events count (until a classifier says otherwise, a hit is a
   hit), ``human`` events also set ``first_human_open_at``.
5. Events may arrive late, twice or out of order: every field is a max or a
   min, so folding the same events in any order gives the same state.
   ``fold`` is the incremental form; ``derive`` folds a whole history; and
   ``merge`` combines two states, so a batch can be folded on its own and
   merged into what is stored (the store does that merge in SQL, field by
   field, exactly as ``merge`` does: times by min, status by ``rank``).

``unsubscribed`` and ``complained`` are flags beside the status, not steps of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, NamedTuple

from mailbeacon.core.events import Classification, EventType

__all__ = [
    "EventFacts",
    "RecipientState",
    "Status",
    "derive",
    "event_state",
    "fold",
    "merge",
    "rank",
    "summarize",
]


class Status(StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    FAILED = "failed"


_RANK: Final = {
    Status.SENT: 0,
    Status.DEFERRED: 1,
    Status.DELIVERED: 2,
    Status.OPENED: 3,
    Status.CLICKED: 4,
    # Terminal statuses rank above every other, so "forward only" keeps them;
    # failed above bounced so that the two, in either order, end the same way.
    Status.BOUNCED: 10,
    Status.FAILED: 11,
}
_TERMINAL: Final = frozenset({Status.BOUNCED, Status.FAILED})
# The status an event proposes; events absent here (unsubscribed, complained, read) set flags only.
_PROPOSES: Final = {
    EventType.SENT: Status.SENT,
    EventType.DEFERRED: Status.DEFERRED,
    EventType.DELIVERED: Status.DELIVERED,
    EventType.OPENED: Status.OPENED,
    EventType.READ: Status.OPENED,
    EventType.CLICKED: Status.CLICKED,
    EventType.BOUNCED: Status.BOUNCED,
    EventType.FAILED: Status.FAILED,
}
_ENGAGED: Final = frozenset({EventType.OPENED, EventType.READ, EventType.CLICKED, EventType.FETCHED})


class EventFacts(NamedTuple):
    """The part of an event that status depends on."""

    type: EventType
    at: float  # Unix seconds
    classification: Classification = Classification.UNKNOWN


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


@dataclass(frozen=True, slots=True)
class RecipientState:
    """Everything derived for one recipient of one message. Times are Unix seconds or None."""

    status: Status = Status.SENT
    sent_at: float | None = None
    delivered_at: float | None = None
    first_fetched_at: float | None = None  # the first pixel or link hit of any kind, machine included
    first_open_at: float | None = None  # the first non-machine open (a click counts)
    first_human_open_at: float | None = None
    first_click_at: float | None = None  # the first non-machine click
    unsubscribed_at: float | None = None
    complained_at: float | None = None


def rank(status: Status) -> int:
    """The order statuses move in; terminal ones rank above all others, so they stay."""
    return _RANK[status]


def merge(a: RecipientState, b: RecipientState) -> RecipientState:
    """The state that folding the events of ``a`` and of ``b`` together would give."""
    status = _advance(a.status, b.status)
    times = {name: _min(getattr(a, name), getattr(b, name)) for name in _TIMES}
    return RecipientState(status, **times)


def _advance(current: Status, proposed: Status) -> Status:
    return proposed if _RANK[proposed] > _RANK[current] else current


def _effect(kind: EventType, verdict: Classification) -> tuple[Status, frozenset[str]]:
    """What one event does: the status it proposes (SENT: none) and the times it sets to its own."""
    times = {
        EventType.SENT: {"sent_at"},
        EventType.DELIVERED: {"delivered_at"},
        EventType.UNSUBSCRIBED: {"unsubscribed_at"},
        EventType.COMPLAINED: {"complained_at"},
    }.get(kind, set())
    proposed = _PROPOSES.get(kind, Status.SENT)
    if kind in _ENGAGED:
        times = {"first_fetched_at"}
        if verdict is Classification.MACHINE or kind is EventType.FETCHED:
            proposed = Status.SENT  # rule 4: a machine never advances the status
        else:
            times.add("first_open_at")  # rule 3: a click implies an open
            if verdict is Classification.HUMAN:
                times.add("first_human_open_at")
            if kind is EventType.CLICKED:
                times.add("first_click_at")
    return proposed, frozenset(times)


def event_state(event: EventFacts) -> RecipientState:
    """The state one event alone gives (``fold`` merges it into the current one)."""
    proposed, times = _EFFECTS[event.type, event.classification]
    return RecipientState(proposed, *(event.at if name in times else None for name in _TIMES))


def fold(state: RecipientState, event: EventFacts) -> RecipientState:
    """The state after ``event``, in whatever order events arrive."""
    return merge(state, event_state(event))


_TIMES: Final = tuple(name for name in RecipientState.__slots__ if name != "status")
# Every (event type, classification) pair's effect, worked out once.
_EFFECTS: Final = {
    (kind, verdict): _effect(kind, verdict) for kind in EventType for verdict in Classification
}


def derive(events: Iterable[EventFacts]) -> RecipientState:
    """Fold a whole history (any order) into a state."""
    state = RecipientState()
    for event in events:
        state = fold(state, event)
    return state


def summarize(states: Iterable[RecipientState]) -> Status:
    """A message's status across its recipients: the furthest any recipient reached.

    A terminal status wins only when every recipient has one: "bounced" for a
    group message means nobody got it.
    """
    statuses = [state.status for state in states]
    if not statuses:
        return Status.SENT
    live = [status for status in statuses if status not in _TERMINAL]
    if not live:
        return Status.FAILED if Status.FAILED in statuses else Status.BOUNCED
    return max(live, key=_RANK.__getitem__)
