"""The outbox's delivery side on each real database: batched recording of attempts."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from mailbeacon.store import Claimed, EventRow, Finished, MessageRecord, Store
from mailbeacon.store.schema import webhook_deliveries


@pytest.fixture
def store(own_store: Store) -> Store:
    """A database of this test's own: the session's webhook server runs a worker on the shared
    one, which claims any account's pending deliveries (once it took both of a test's two
    deliveries first, and the claim here found none)."""
    return own_store


def _claim_all(store: Store, n: int) -> list[Claimed]:
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    endpoint = store.endpoints.create(account, "https://example.invalid/hook", [])
    for i in range(n):
        store.deliveries.add_test(account, endpoint.id, f'{{"n": {i}}}')
    claimed = [c for c in store.deliveries.claim(1000, 60) if c.endpoint_id == endpoint.id]
    assert len(claimed) == n
    return claimed


def test_finish_many_records_every_attempt_and_the_endpoints_last_failure_run(store: Store) -> None:
    claimed = _claim_all(store, 3)
    endpoint_id = claimed[0].endpoint_id
    account_id = claimed[0].account_id
    store.deliveries.finish_many(
        [
            Finished(claimed[2], 30.0, 500, None, 0.1, 90.0, False),  # out of order: sorted by time
            Finished(claimed[0], 10.0, 500, None, 0.1, 70.0, False),
            Finished(claimed[1], 20.0, 200, None, 0.1, None, True),
        ]
    )
    attempts = store.deliveries.attempts(account_id, endpoint_id)
    assert [a.at for a in attempts] == [30.0, 20.0, 10.0]
    assert {a.delivery_id: a.state for a in attempts} == {
        claimed[0].id: "pending",
        claimed[1].id: "delivered",
        claimed[2].id: "pending",
    }
    endpoint = store.endpoints.get_any(endpoint_id)
    assert endpoint is not None
    assert endpoint.failing_since == 30.0  # failing since the last success
    assert store.deliveries.counts(endpoint_id) == {"pending": 2, "delivered": 1}

    # More failures keep the first; a success clears it; a given-up delivery is failed.
    store.deliveries.finish_many([Finished(claimed[0], 40.0, 500, None, 0.1, None, False)])
    endpoint = store.endpoints.get_any(endpoint_id)
    assert endpoint is not None
    assert endpoint.failing_since == 30.0
    store.deliveries.finish_many([Finished(claimed[2], 50.0, 204, None, 0.1, None, True)])
    endpoint = store.endpoints.get_any(endpoint_id)
    assert endpoint is not None
    assert endpoint.failing_since is None
    assert store.deliveries.counts(endpoint_id) == {"failed": 1, "delivered": 2}


def test_a_leased_batch_is_not_claimed_again(store: Store) -> None:
    claimed = _claim_all(store, 2)
    again = store.deliveries.claim(1000, 60)
    assert not {c.id for c in claimed} & {c.id for c in again}
    assert store.deliveries.events([]) == {}
    assert store.endpoints.get_many([claimed[0].endpoint_id]).keys() == {claimed[0].endpoint_id}


def test_finish_and_claim_records_then_claims_in_one_call(store: Store) -> None:
    first, second = _claim_all(store, 2)
    now = time.time()
    # ``second`` failed and is due again at once: the claim in the same call sees the recorded retry.
    again = store.deliveries.finish_and_claim(
        [
            Finished(first, now, 200, None, 0.1, None, True),
            Finished(second, now, 500, "HTTP 500", 0.1, now - 1, False),
        ],
        1000,
        60,
        now=now,
    )
    mine = [c for c in again if c.endpoint_id == first.endpoint_id]
    assert [(c.id, c.attempts) for c in mine] == [(second.id, second.attempts + 1)]
    assert store.deliveries.counts(first.endpoint_id) == {"delivered": 1, "pending": 1}
    assert len(store.deliveries.attempts(first.account_id, first.endpoint_id)) == 2


def test_finish_and_claim_with_no_room_records_and_claims_nothing(store: Store) -> None:
    first, second = _claim_all(store, 2)
    now = time.time()
    retry = Finished(second, now, 500, "HTTP 500", 0.1, now - 1, False)
    assert store.deliveries.finish_and_claim([retry], 0, 60, now=now) == []
    assert store.deliveries.counts(first.endpoint_id) == {"pending": 2}
    assert len(store.deliveries.attempts(first.account_id, first.endpoint_id)) == 1
    # Still due, and claimable by the next call that has room.
    claimed = [
        c
        for c in store.deliveries.finish_and_claim([], 1000, 60, now=now)
        if c.endpoint_id == first.endpoint_id
    ]
    assert [c.id for c in claimed] == [second.id]


def test_a_claim_takes_the_earliest_due_without_sorting_the_outbox(own_database_url: str) -> None:
    """A burst grows the outbox from nothing to many rows before the statistics catch up
    (autovacuum analyzes a minute apart): the claim must still walk the due index and stop at
    its limit. With stale statistics PostgreSQL sorted every pending row on each claim."""
    store = Store(own_database_url)
    store.upgrade()
    store.start()
    try:
        account = store.accounts.ensure("burst").id
        endpoint = store.endpoints.create(account, "https://example.invalid/hook", [])
        postgres = not own_database_url.startswith("sqlite")
        if postgres:
            with store.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE mb_webhook_deliveries")  # statistics of an empty outbox
        now = time.time()
        pending = {"account_id": account, "endpoint_id": endpoint.id, "state": "pending", "attempts": 0}
        rows = [
            {**pending, "id": f"wh_{i:06d}", "event_seq": i, "next_at": now - 20_000 + i, "created_at": now}
            for i in range(20_000)
        ]
        with store.engine.begin() as connection:
            connection.execute(webhook_deliveries.insert(), rows[::-1])
        claimed = store.deliveries.claim(50, 60, now=now)
        assert sorted(c.id for c in claimed) == [f"wh_{i:06d}" for i in range(50)]  # the 50 due first
        if postgres:
            with store.engine.begin() as connection:
                connection.execute(store.deliveries._no_sort)
                plan = "\n".join(
                    row[0]
                    for row in connection.execute(
                        text("EXPLAIN " + str(store.deliveries._claim)),
                        {"now": now, "lease": now, "limit": 50},
                    )
                )
            assert "ix_mb_webhook_deliveries_due" in plan
            assert "Sort" not in plan, plan
    finally:
        store.close()


def test_the_outbox_follows_each_endpoints_types_and_campaign(store: Store) -> None:
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    everything = store.endpoints.create(account, "https://example.invalid/all", [])
    spring = store.endpoints.create(account, "https://example.invalid/spring", [], campaign="spring")
    clicks = store.endpoints.create(account, "https://example.invalid/clicks", ["clicked"])
    other = store.accounts.ensure(f"b-{uuid.uuid4().hex[:8]}").id  # no endpoints: none of its events
    for message, campaign in (("m-spring", "spring"), ("m-autumn", "autumn")):
        store.messages.register(MessageRecord(account, message, campaign=campaign, created_at=1.0), ["r"], [])
    rows = [
        EventRow(account, "m-spring", "r", "opened", 2.0),
        EventRow(account, "m-autumn", "r", "opened", 2.0),
        EventRow(account, "m-autumn", "r", "clicked", 3.0),
        EventRow(other, "m-spring", "r", "clicked", 3.0),
    ]
    assert store.recorder.write(rows)
    counts = {e.id: sum(store.deliveries.counts(e.id).values()) for e in (everything, spring, clicks)}
    # two "sent" (registration) and three engagement events of this account; spring's two; one click
    assert counts == {everything.id: 5, spring.id: 2, clicks.id: 1}
