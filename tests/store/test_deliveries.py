"""The outbox's delivery side on each real database: batched recording of attempts."""

from __future__ import annotations

import time
import uuid

from mailbeacon.store import Claimed, Finished, Store


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
