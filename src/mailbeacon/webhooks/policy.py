"""When to try a delivery again, and what a delivery says (no I/O here).

The schedule follows the Standard Webhooks example: the first retry within
seconds, then 5 min, 30 min, 2 h, 5 h, 10 h and every 10 h after, about
three days in all (12 attempts). Each delay is jittered by ±20% so endpoints
that failed together do not all come back in the same second. A receiver's
``Retry-After`` is honoured when it asks for longer (capped at a day).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["DEFAULT_SCHEDULE", "Decision", "Outcome", "RetryPolicy", "event_body", "parse_retry_after"]

DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000, 36000, 36000, 36000, 36000)
_MAX_RETRY_AFTER = 86400.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one attempt."""

    status_code: int | None  # None: no HTTP answer (refused, timed out, unsafe address)
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop; the endpoint is disabled."""
        return self.status_code == 410


@dataclass(frozen=True, slots=True)
class Decision:
    """What follows an attempt: when to try this delivery again, and whether to disable the endpoint."""

    next_delay: float | None  # seconds; None: no further attempt (delivered, gone, or used up)
    disable: str | None = None  # why the endpoint is disabled, when it is


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    schedule: Sequence[float] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    disable_after: float = 5 * 86400.0  # an endpoint failing this long (no success) is disabled

    def next_delay(
        self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds until the next try after ``attempts`` failed tries, or None when they are used up."""
        if attempts < 1:
            raise ValueError(f"attempts counts the tries made so far, at least 1, not {attempts}")
        if attempts > len(self.schedule):
            return None
        base = self.schedule[attempts - 1]
        spread = base * self.jitter
        delay = base + (rng or random).uniform(-spread, spread)
        if retry_after is not None:
            delay = max(delay, min(retry_after, _MAX_RETRY_AFTER))
        return delay

    def decide(
        self,
        outcome: Outcome,
        attempts: int,
        failing_since: float | None,
        now: float,
        rng: random.Random | None = None,
    ) -> Decision:
        """After the ``attempts``-th try of a delivery, at ``now``; ``failing_since`` is the endpoint's
        first failure since its last success (None: its last attempt succeeded)."""
        if outcome.delivered:
            return Decision(None)
        if outcome.gone:
            return Decision(None, "the receiver answered 410 Gone")
        delay = self.next_delay(attempts, outcome.retry_after, rng)
        if failing_since is not None and now - failing_since > self.disable_after:
            return Decision(delay, f"no successful delivery for {self.disable_after / 86400:g} days")
        return Decision(delay)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def event_body(event: dict[str, Any], campaign: str | None) -> str:
    """The JSON body for one recorded event: ``{"type": "message.opened", "timestamp", "data"}``."""
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(event["at"], UTC).isoformat().replace("+00:00", "Z")
    data = {
        "seq": event["seq"],
        "message_id": event["message_id"],
        "recipient": event["recipient"],
        "type": event["type"],
        "at": at,
        "campaign": campaign,
        "link": event["link"],
        "url": event["url"],
        "classification": event["classification"],
        "reasons": event["reasons"].split() if event["reasons"] else [],
        "confidence": event["confidence"],
        "event_id": event["event_id"],
    }
    body = {"type": "message." + event["type"], "timestamp": at, "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
