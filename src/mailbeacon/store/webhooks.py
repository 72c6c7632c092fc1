"""Webhook endpoints, and the outbox the recorder writes in the events' own transaction.

``OutboxWriter`` is the recorder's in-transaction step: before the batch's
insert it notes the highest ``seq``; after it, it reads back the batch's
events of accounts that have endpoints and inserts one delivery per
matching (endpoint, event). So an event is never committed without its
deliveries, and a crash never drops one. Rows another node committed
meanwhile may be read back too; the unique (endpoint, event) key makes that
harmless. Endpoints are cached in memory; every batch first reads one
aggregate row of the endpoints table (count and sum of ``updated_at`` of the
enabled ones, in the batch's own transaction) and reloads the cache when it
changed. So an endpoint created or changed by any process (an API worker,
another node) counts for every batch that starts after that change committed:
every hit answered after the API call returned (the ingester process reads
hits only after they were answered). A sum, not a maximum, so a node whose
clock lags still changes it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from mailbeacon.store.engine import is_sqlite
from mailbeacon.store.ids import new_id
from mailbeacon.store.schema import webhook_endpoints

__all__ = ["Endpoint", "EndpointStore", "OutboxWriter"]

# Changes whenever an endpoint is added, removed, enabled, disabled or edited (each sets updated_at).
_FINGERPRINT = "SELECT count(*), coalesce(sum(updated_at), 0) FROM mb_webhook_endpoints WHERE enabled"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    account_id: str
    url: str
    types: tuple[str, ...]  # empty: every type
    campaign: str | None
    description: str | None
    secret: str
    old_secret: str | None
    old_secret_until: float | None
    enabled: bool
    disabled_reason: str | None
    failing_since: float | None
    created_at: float
    updated_at: float

    def wants(self, event_type: str, campaign: str | None) -> bool:
        if self.types and event_type not in self.types:
            return False
        return self.campaign is None or self.campaign == campaign

    def signing_secrets(self, now: float) -> list[str]:
        """The current secret, and the old one while the rotation overlap lasts."""
        if self.old_secret and self.old_secret_until and now < self.old_secret_until:
            return [self.secret, self.old_secret]
        return [self.secret]


def _endpoint(row: Any) -> Endpoint:
    values = dict(row._mapping)
    values["types"] = tuple(values["types"].split())
    return Endpoint(**values)


class EndpointStore:
    """CRUD of endpoints, with an in-memory cache of the enabled ones per account."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._by_account: dict[str, list[Endpoint]] = {}
        self._seen: tuple[Any, ...] | None = None  # the fingerprint _by_account was loaded at

    def invalidate(self) -> None:
        self._seen = None

    def _fingerprint(self, cursor: Any) -> tuple[Any, ...]:
        if cursor is None:
            with self._engine.connect() as connection:
                return tuple(connection.exec_driver_sql(_FINGERPRINT).one())
        cursor.execute(_FINGERPRINT)
        return tuple(cursor.fetchone())

    def enabled_by_account(self, cursor: Any = None) -> dict[str, list[Endpoint]]:
        """Enabled endpoints per account, current as of this call (the recorder calls it per batch).

        ``cursor``: the batch's own DB-API cursor, so the check costs no extra connection.
        """
        fingerprint = self._fingerprint(cursor)
        with self._lock:
            if fingerprint != self._seen:
                # A change committed between the two reads is in what is loaded; the fingerprint
                # noted is the older one, so the next batch simply loads again.
                query = select(webhook_endpoints).where(webhook_endpoints.c.enabled.is_(True))
                with self._engine.connect() as connection:
                    found: dict[str, list[Endpoint]] = {}
                    for row in connection.execute(query):
                        found.setdefault(row.account_id, []).append(_endpoint(row))
                self._by_account, self._seen = found, fingerprint
            return self._by_account

    def create(self, account_id: str, url: str, types: Sequence[str], **fields: Any) -> Endpoint:
        from mailbeacon.webhooks.signing import new_secret

        now = time.time()
        values = {
            "id": "ep_" + new_id(),
            "account_id": account_id,
            "url": url,
            "types": " ".join(types),
            "campaign": fields.get("campaign"),
            "description": fields.get("description"),
            "secret": new_secret(),
            "old_secret": None,
            "old_secret_until": None,
            "enabled": True,
            "disabled_reason": None,
            "failing_since": None,
            "created_at": now,
            "updated_at": now,
        }
        with self._engine.begin() as connection:
            connection.execute(webhook_endpoints.insert().values(**values))
        self.invalidate()
        return _endpoint(_Row(values))

    def get(self, account_id: str, endpoint_id: str) -> Endpoint | None:
        query = select(webhook_endpoints).where(
            webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.id == endpoint_id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return _endpoint(row) if row else None

    def get_any(self, endpoint_id: str) -> Endpoint | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            ).first()
        return _endpoint(row) if row else None

    def get_many(self, endpoint_ids: Iterable[str]) -> dict[str, Endpoint]:
        """The endpoints ``endpoint_ids`` that exist, enabled or not, in one query."""
        ids = sorted(set(endpoint_ids))
        if not ids:
            return {}
        with self._engine.connect() as connection:
            rows = connection.execute(select(webhook_endpoints).where(webhook_endpoints.c.id.in_(ids)))
            return {row.id: _endpoint(row) for row in rows}

    def list(self, account_id: str) -> list[Endpoint]:
        query = (
            select(webhook_endpoints)
            .where(webhook_endpoints.c.account_id == account_id)
            .order_by(webhook_endpoints.c.created_at)
        )
        with self._engine.connect() as connection:
            return [_endpoint(row) for row in connection.execute(query)]

    def update(self, account_id: str, endpoint_id: str, **values: Any) -> Endpoint | None:
        if "types" in values:
            values["types"] = " ".join(values["types"])
        values["updated_at"] = time.time()
        with self._engine.begin() as connection:
            result = connection.execute(
                webhook_endpoints.update()
                .where(webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.id == endpoint_id)
                .values(**values)
            )
        self.invalidate()
        return self.get(account_id, endpoint_id) if result.rowcount else None

    def rotate(self, account_id: str, endpoint_id: str, overlap: float) -> Endpoint | None:
        from mailbeacon.webhooks.signing import new_secret

        current = self.get(account_id, endpoint_id)
        if current is None:
            return None
        return self.update(
            account_id,
            endpoint_id,
            secret=new_secret(),
            old_secret=current.secret,
            old_secret_until=time.time() + overlap,
        )

    def delete(self, account_id: str, endpoint_id: str) -> bool:
        from mailbeacon.store.schema import webhook_deliveries

        with self._engine.begin() as connection:
            result = connection.execute(
                webhook_endpoints.delete().where(
                    webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.id == endpoint_id
                )
            )
            connection.execute(
                webhook_deliveries.delete().where(
                    webhook_deliveries.c.endpoint_id == endpoint_id, webhook_deliveries.c.state == "pending"
                )
            )
        self.invalidate()
        return bool(result.rowcount)


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self._mapping = values


class OutboxWriter:
    """The recorder's in-transaction step that turns committed events into deliveries."""

    def __init__(self, engine: Engine, endpoints: EndpointStore) -> None:
        self._endpoints = endpoints
        mark = "?" if is_sqlite(engine) else "%s"
        self._mark = mark
        self._insert = (
            "INSERT INTO mb_webhook_deliveries (id, account_id, endpoint_id, event_seq, payload, state, "  # noqa: S608
            f"attempts, next_at, created_at) VALUES ({mark}, {mark}, {mark}, {mark}, NULL, 'pending', 0, "
            f"{mark}, {mark}) ON CONFLICT DO NOTHING"
        )
        # PostgreSQL: one statement for the whole batch, its rows as one JSON array. executemany
        # runs one statement a row, and at 10 endpoints a row a delivery that was a third of
        # PostgreSQL's CPU in benchmarks/webhooks.py; columns as arrays went through psycopg's
        # pure-Python list dumper, a third of the ingester's time in a burst, where json.dumps
        # is C. SQLite's statements are in-process and cheap.
        self._insert_json = (
            None
            if is_sqlite(engine)
            else "INSERT INTO mb_webhook_deliveries (id, account_id, endpoint_id, event_seq, payload, state, "
            "attempts, next_at, created_at) SELECT v->>0, v->>1, v->>2, (v->>3)::bigint, NULL, 'pending', "
            "0, (v->>4)::float8, (v->>5)::float8 FROM json_array_elements(%s::json) AS t(v) "
            "ON CONFLICT DO NOTHING"
        )

    def before(self, cursor: Any, rows: Sequence[Any]) -> tuple[int, dict[str, list[Endpoint]]] | None:
        """The highest seq before this batch, when some account in it has endpoints."""
        by_account = self._endpoints.enabled_by_account(cursor)
        if not by_account:
            return None
        wanted = {row.account_id: by_account[row.account_id] for row in rows if row.account_id in by_account}
        if not wanted:
            return None
        cursor.execute("SELECT coalesce(max(seq), 0) FROM mb_events")
        return int(cursor.fetchone()[0]), wanted

    def after(self, cursor: Any, noted: tuple[int, dict[str, list[Endpoint]]] | None) -> None:
        if noted is None:
            return
        since, wanted = noted
        # This batch's events, by the primary key alone: a range bounded on both sides, no
        # account filter and, unless an endpoint filters by campaign, no join. PostgreSQL plans
        # from statistics that lag a growing table: with "seq > x AND account_id IN (...)" it
        # walked ix_mb_events_message over all of the account's events, seconds per batch
        # once a burst had written 100,000 of them (pg_stat_activity, benchmarks/webhooks.py).
        cursor.execute("SELECT coalesce(max(seq), 0) FROM mb_events")
        until = int(cursor.fetchone()[0])
        by_campaign = any(e.campaign is not None for endpoints in wanted.values() for e in endpoints)
        campaign = (
            "(SELECT m.campaign FROM mb_messages m WHERE m.account_id = e.account_id AND m.id = e.message_id)"
            if by_campaign
            else "NULL"
        )
        cursor.execute(
            f"SELECT e.seq, e.account_id, e.type, {campaign} FROM mb_events e "  # noqa: S608
            f"WHERE e.seq > {self._mark} AND e.seq <= {self._mark}",
            [since, until],
        )
        now = time.time()
        deliveries = [
            ("wh_" + new_id(), account, endpoint.id, seq, now, now)
            for seq, account, event_type, campaign in cursor.fetchall()
            if account in wanted
            for endpoint in wanted[account]
            if endpoint.wants(event_type, campaign)
        ]
        if not deliveries:
            return
        if self._insert_json is not None:
            cursor.execute(self._insert_json, [json.dumps(deliveries)])
        else:
            cursor.executemany(self._insert, deliveries)
