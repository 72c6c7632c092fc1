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

from sqlalchemy import Connection, Engine, and_, bindparam, select, text

from mailbeacon.store.engine import is_sqlite
from mailbeacon.store.ids import new_id
from mailbeacon.store.schema import events, messages, webhook_attempts, webhook_deliveries, webhook_endpoints

__all__ = ["Attempt", "Claimed", "DeliveryStore", "Finished"]


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
class Finished:
    """One attempt's outcome, to record with ``DeliveryStore.finish_many``."""

    claimed: Claimed
    at: float
    status_code: int | None
    error: str | None
    duration: float
    next_at: float | None  # the retry's time; None: delivered or given up
    delivered: bool

    @property
    def state(self) -> str:
        return "delivered" if self.delivered else ("pending" if self.next_at is not None else "failed")


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

_DUE = """
SELECT 1 FROM mb_webhook_deliveries d
JOIN mb_webhook_endpoints e ON e.id = d.endpoint_id
WHERE d.state = 'pending' AND d.next_at <= :now AND e.enabled
LIMIT 1
"""

_UPDATE_DELIVERY = (
    webhook_deliveries.update()
    .where(webhook_deliveries.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        attempts=bindparam("b_attempts"),
        next_at=bindparam("b_next_at"),
        finished_at=bindparam("b_finished_at"),
    )
)

# PostgreSQL: a batch's attempts and delivery updates as one statement each, the columns as
# arrays (executemany runs one statement a row: most of PostgreSQL's work per delivery).
_INSERT_ATTEMPTS_PG = text(
    "INSERT INTO mb_webhook_attempts"
    " (account_id, endpoint_id, delivery_id, at, status_code, error, duration) "
    "SELECT account_id, endpoint_id, delivery_id, at, status_code, error, duration FROM unnest("
    "CAST(:account_id AS varchar[]), CAST(:endpoint_id AS varchar[]), CAST(:delivery_id AS varchar[]), "
    "CAST(:at AS float8[]), CAST(:status_code AS integer[]), CAST(:error AS text[]), "
    "CAST(:duration AS float8[])) WITH ORDINALITY "
    "AS v(account_id, endpoint_id, delivery_id, at, status_code, error, duration, n) ORDER BY n"
)
_UPDATE_DELIVERIES_PG = text(
    "UPDATE mb_webhook_deliveries AS d SET state = v.state, attempts = v.attempts, next_at = v.next_at, "
    "finished_at = v.finished_at FROM unnest(CAST(:b_id AS varchar[]), CAST(:b_state AS varchar[]), "
    "CAST(:b_attempts AS integer[]), CAST(:b_next_at AS float8[]), CAST(:b_finished_at AS float8[])) "
    "AS v(id, state, attempts, next_at, finished_at) WHERE d.id = v.id"
)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in rows[0]}


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        lock = "" if is_sqlite(engine) else "FOR UPDATE OF d SKIP LOCKED"
        self._claim = text(_CLAIM.format(lock=lock))
        self._due = text(_DUE)
        # PostgreSQL plans the claim from table statistics, and the outbox grows from a few rows
        # to a million in a burst (ten per event at ten endpoints) long before autovacuum's next
        # ANALYZE (a minute apart). With the stale "22 rows" estimate it sorted every pending row
        # on each claim: ~0.9 s and a 45 MB disk sort per claim at 1M rows, on the ingester's
        # loop. No sort: the only plan left walks ix_mb_webhook_deliveries_due in next_at order
        # and stops at the limit (~4 ms), whatever the statistics say. Local to the transaction.
        self._no_sort = None if is_sqlite(engine) else text("SET LOCAL enable_sort = off")

    def claim(self, limit: int, lease: float, now: float | None = None) -> list[Claimed]:
        """Up to ``limit`` due deliveries, leased for ``lease`` seconds to the caller."""
        return self.finish_and_claim([], limit, lease, now)

    def finish_and_claim(
        self, finished: list[Finished], limit: int, lease: float, now: float | None = None
    ) -> list[Claimed]:
        """Record ``finished`` (as ``finish_many``) and claim up to ``limit`` due deliveries, in one
        transaction: on SQLite every write transaction queues for the one write lock (behind the
        ingester), so a worker that took it twice per batch spent most of its time waiting."""
        now = time.time() if now is None else now
        if not finished:
            with self._engine.connect() as connection:
                # A read first: an idle poll (every 50 ms while busy) then takes no write lock,
                # which on SQLite the ingester would have to wait for.
                if limit <= 0 or not connection.execute(self._due, {"now": now}).first():
                    return []
        with self._engine.begin() as connection:
            self._finish(connection, finished)
            if limit <= 0:
                return []
            if self._no_sort is not None:
                connection.execute(self._no_sort)
            rows = connection.execute(self._claim, {"now": now, "lease": now + lease, "limit": limit}).all()
        return [Claimed(*row) for row in rows]

    def event(self, seq: int) -> tuple[dict[str, Any], str | None] | None:
        """The event ``seq`` and its message's campaign."""
        return self.events([seq]).get(seq)

    def events(self, seqs: list[int]) -> dict[int, tuple[dict[str, Any], str | None]]:
        """The events ``seqs`` (those that exist) and their messages' campaigns, in one query."""
        if not seqs:
            return {}
        query = (
            select(events, messages.c.campaign)
            .select_from(
                events.outerjoin(
                    messages,
                    and_(messages.c.account_id == events.c.account_id, messages.c.id == events.c.message_id),
                )
            )
            .where(events.c.seq.in_(sorted(set(seqs))))
        )
        found: dict[int, tuple[dict[str, Any], str | None]] = {}
        with self._engine.connect() as connection:
            for row in connection.execute(query):
                values = dict(row._mapping)
                campaign = values.pop("campaign")
                found[values["seq"]] = (values, campaign)
        return found

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
        self.finish_many([Finished(claimed, at, status_code, error, duration, next_at, delivered)])

    def finish_many(self, finished: list[Finished]) -> None:
        """Record many attempts in one transaction: their rows, their deliveries' new states, and
        each endpoint's ``failing_since``, written at most once per endpoint and only when it changes
        (the endpoint row is the one every worker would otherwise update on every success)."""
        if finished:
            with self._engine.begin() as connection:
                self._finish(connection, finished)

    @staticmethod
    def _finish(connection: Connection, finished: list[Finished]) -> None:
        if not finished:
            return
        finished = sorted(finished, key=lambda f: f.at)
        attempts = [
            {
                "account_id": f.claimed.account_id,
                "endpoint_id": f.claimed.endpoint_id,
                "delivery_id": f.claimed.id,
                "at": f.at,
                "status_code": f.status_code,
                "error": f.error,
                "duration": f.duration,
            }
            for f in finished
        ]
        updates = [
            {
                "b_id": f.claimed.id,
                "b_state": f.state,
                "b_attempts": f.claimed.attempts + 1,
                "b_next_at": f.next_at if f.next_at is not None else f.at,
                "b_finished_at": None if f.state == "pending" else f.at,
            }
            for f in finished
        ]
        # Per endpoint, in time order: None after a success, else the first failure since.
        succeeded: dict[str, bool] = {}  # endpoint -> had a success in this batch
        failing: dict[str, float | None] = {}
        for f in finished:
            endpoint_id = f.claimed.endpoint_id
            if f.delivered:
                succeeded[endpoint_id] = True
                failing[endpoint_id] = None
            elif failing.get(endpoint_id) is None:
                failing[endpoint_id] = f.at
            succeeded.setdefault(endpoint_id, False)
        column = webhook_endpoints.c.failing_since
        if connection.dialect.name == "postgresql":
            connection.execute(_INSERT_ATTEMPTS_PG, _columns(attempts))
            connection.execute(_UPDATE_DELIVERIES_PG, _columns(updates))
        else:
            connection.execute(webhook_attempts.insert(), attempts)
            connection.execute(_UPDATE_DELIVERY, updates)
        for endpoint_id, since in sorted(failing.items()):  # one lock order for all workers
            endpoint = webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id)
            if since is None:  # its last attempt succeeded
                connection.execute(endpoint.where(column.is_not(None)).values(failing_since=None))
            elif succeeded[endpoint_id]:  # failing again since ``since``, after a success
                connection.execute(
                    endpoint.where(column.is_(None) | (column != since)).values(failing_since=since)
                )
            else:  # failing: since its earlier first failure, or since now
                connection.execute(endpoint.where(column.is_(None)).values(failing_since=since))

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
