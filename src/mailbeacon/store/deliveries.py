"""The outbox's other side: claiming due deliveries, recording attempts, replaying a range.

Claiming is one statement that moves each claimed row's ``next_at`` past the
attempt's deadline (a lease) and returns the rows. On PostgreSQL the rows are
picked with ``FOR UPDATE SKIP LOCKED``, so workers on several nodes claim
disjoint sets without waiting for each other; SQLite has a single writer, so
the same UPDATE runs under its write lock and two workers cannot both claim
a row. A worker that dies mid-attempt leaves the lease to expire, and the
delivery is claimed again: at least once, never lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, select, text

from mailbeacon.store.engine import is_sqlite
from mailbeacon.store.ids import new_id
from mailbeacon.store.schema import events, messages, webhook_attempts, webhook_deliveries, webhook_endpoints

__all__ = ["Attempt", "Claimed", "DeliveryStore"]


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    account_id: str
    endpoint_id: str
    event_seq: int | None
    payload: str | None
    attempts: int  # tries made before this one
    created_at: float


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    at: float
    status_code: int | None
    error: str | None
    duration: float
    state: str
    event_seq: int | None


_CLAIM = """
UPDATE mb_webhook_deliveries SET next_at = :lease
WHERE id IN (
    SELECT d.id FROM mb_webhook_deliveries d
    JOIN mb_webhook_endpoints e ON e.id = d.endpoint_id
    WHERE d.state = 'pending' AND d.next_at <= :now AND e.enabled
    ORDER BY d.next_at LIMIT :limit {lock}
)
RETURNING id, account_id, endpoint_id, event_seq, payload, attempts, created_at
"""


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        lock = "" if is_sqlite(engine) else "FOR UPDATE OF d SKIP LOCKED"
        self._claim = text(_CLAIM.format(lock=lock))

    def claim(self, limit: int, lease: float, now: float | None = None) -> list[Claimed]:
        now = time.time() if now is None else now
        with self._engine.begin() as connection:
            rows = connection.execute(self._claim, {"now": now, "lease": now + lease, "limit": limit}).all()
        return [Claimed(*row) for row in rows]

    def event(self, seq: int) -> tuple[dict[str, Any], str | None] | None:
        """The event ``seq`` and its message's campaign."""
        query = (
            select(events, messages.c.campaign)
            .select_from(
                events.outerjoin(
                    messages,
                    and_(messages.c.account_id == events.c.account_id, messages.c.id == events.c.message_id),
                )
            )
            .where(events.c.seq == seq)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        values = dict(row._mapping)
        return values, values.pop("campaign")

    def finish(
        self,
        claimed: Claimed,
        *,
        at: float,
        status_code: int | None,
        error: str | None,
        duration: float,
        next_at: float | None,
        delivered: bool,
    ) -> None:
        """Record the attempt and the delivery's new state: delivered, retried at ``next_at``, or failed."""
        state = "delivered" if delivered else ("pending" if next_at is not None else "failed")
        with self._engine.begin() as connection:
            connection.execute(
                webhook_attempts.insert().values(
                    account_id=claimed.account_id,
                    endpoint_id=claimed.endpoint_id,
                    delivery_id=claimed.id,
                    at=at,
                    status_code=status_code,
                    error=error,
                    duration=duration,
                )
            )
            connection.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == claimed.id)
                .values(
                    state=state,
                    attempts=claimed.attempts + 1,
                    next_at=next_at if next_at is not None else at,
                    finished_at=None if state == "pending" else at,
                )
            )
            endpoint = webhook_endpoints.update().where(webhook_endpoints.c.id == claimed.endpoint_id)
            if delivered:
                connection.execute(endpoint.values(failing_since=None))
            else:
                connection.execute(
                    endpoint.where(webhook_endpoints.c.failing_since.is_(None)).values(failing_since=at)
                )

    def disable(self, endpoint_id: str, reason: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(
                webhook_endpoints.update()
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(enabled=False, disabled_reason=reason, updated_at=time.time())
            )

    def add_test(self, account_id: str, endpoint_id: str, payload: str) -> str:
        delivery_id = "wh_" + new_id()
        now = time.time()
        with self._engine.begin() as connection:
            connection.execute(
                webhook_deliveries.insert().values(
                    id=delivery_id,
                    account_id=account_id,
                    endpoint_id=endpoint_id,
                    event_seq=None,
                    payload=payload,
                    state="pending",
                    attempts=0,
                    next_at=now,
                    created_at=now,
                )
            )
        return delivery_id

    def replay(
        self,
        account_id: str,
        endpoint_id: str,
        since: float,
        until: float,
        types: tuple[str, ...] = (),
        campaign: str | None = None,
    ) -> int:
        """Queue again the account's events recorded in [since, until); a resend keeps its webhook-id."""
        now = time.time()
        query = select(events.c.seq).where(
            events.c.account_id == account_id, events.c.at >= since, events.c.at < until
        )
        if types:  # the endpoint's own filters apply to a replay too
            query = query.where(events.c.type.in_(types))
        if campaign is not None:
            query = query.join(
                messages,
                and_(messages.c.account_id == events.c.account_id, messages.c.id == events.c.message_id),
            ).where(messages.c.campaign == campaign)
        with self._engine.begin() as connection:
            seqs = list(connection.execute(query).scalars())
            known = (
                set(
                    connection.execute(
                        select(webhook_deliveries.c.event_seq).where(
                            webhook_deliveries.c.endpoint_id == endpoint_id,
                            webhook_deliveries.c.event_seq.in_(seqs),
                        )
                    ).scalars()
                )
                if seqs
                else set()
            )
            fresh = [
                {
                    "id": "wh_" + new_id(),
                    "account_id": account_id,
                    "endpoint_id": endpoint_id,
                    "event_seq": seq,
                    "payload": None,
                    "state": "pending",
                    "attempts": 0,
                    "next_at": now,
                    "created_at": now,
                }
                for seq in seqs
                if seq not in known
            ]
            if fresh:
                connection.execute(webhook_deliveries.insert(), fresh)
            if known:
                connection.execute(
                    webhook_deliveries.update()
                    .where(
                        webhook_deliveries.c.endpoint_id == endpoint_id,
                        webhook_deliveries.c.event_seq.in_(list(known)),
                    )
                    .values(state="pending", next_at=now, attempts=0, finished_at=None)
                )
        return len(seqs)

    def attempts(self, account_id: str, endpoint_id: str, limit: int = 50) -> list[Attempt]:
        query = (
            select(
                webhook_attempts.c.delivery_id,
                webhook_attempts.c.at,
                webhook_attempts.c.status_code,
                webhook_attempts.c.error,
                webhook_attempts.c.duration,
                webhook_deliveries.c.state,
                webhook_deliveries.c.event_seq,
            )
            .join(webhook_deliveries, webhook_deliveries.c.id == webhook_attempts.c.delivery_id)
            .where(webhook_attempts.c.account_id == account_id, webhook_attempts.c.endpoint_id == endpoint_id)
            .order_by(webhook_attempts.c.seq.desc())
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [Attempt(*row) for row in connection.execute(query)]

    def counts(self, endpoint_id: str) -> dict[str, int]:
        from sqlalchemy import func

        query = (
            select(webhook_deliveries.c.state, func.count())
            .where(webhook_deliveries.c.endpoint_id == endpoint_id)
            .group_by(webhook_deliveries.c.state)
        )
        with self._engine.connect() as connection:
            return {state: int(n) for state, n in connection.execute(query)}
