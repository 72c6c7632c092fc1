"""The recorder and the projection on each real database: what is committed, and the SQL merge."""

from __future__ import annotations

import asyncio
import random
import uuid

from mailbeacon.core.events import Classification, EventType
from mailbeacon.core.status import EventFacts, derive
from mailbeacon.store import EventRow, MessageRecord, Store


def record_all(store: Store, batches: list[list[EventRow]]) -> list[bool]:
    async def run() -> list[bool]:
        results: list[bool] = []
        for batch in batches:  # each list is gathered into one group commit
            results += await asyncio.gather(*(store.recorder.record(row) for row in batch))
        return results

    return asyncio.run(run())


def test_migrations_are_idempotent(store: Store) -> None:
    store.upgrade()
    store.upgrade()


def test_a_gathered_batch_is_one_commit(store: Store) -> None:
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    before = store.recorder.batches
    rows = [EventRow(account, f"m{i}", "", "opened", 1.0 + i) for i in range(50)]
    assert record_all(store, [rows]) == [True] * 50
    assert store.recorder.batches == before + 1


def test_sql_merge_matches_the_core_fold_in_any_batching(store: Store) -> None:
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    rnd = random.Random(42)
    message = "merge-check"
    store.messages.register(MessageRecord(account, message, created_at=1.0), ["r"], [])
    history = [
        EventRow(account, message, "r", rnd.choice(list(EventType)).value, rnd.uniform(0, 100),
                 classification=rnd.choice(list(Classification)).value)
        for _ in range(60)
    ]  # fmt: skip
    rnd.shuffle(history)
    cuts = sorted(rnd.sample(range(1, 60), 6))
    batches = [history[a:b] for a, b in zip([0, *cuts], [*cuts, 60], strict=True)]
    record_all(store, batches)
    view = store.messages.get(account, message)
    assert view is not None
    expected = derive(
        [EventFacts(EventType.SENT, 1.0)]
        + [EventFacts(EventType(r.type), r.at, Classification(r.classification)) for r in history]
    )
    assert view.recipients["r"] == expected


def test_a_batch_of_many_messages_and_recipients_merges_like_the_core_fold(store: Store) -> None:
    # On PostgreSQL each batch is one statement per table over arrays, in key order: every
    # message and recipient must land in its own row, awkward ids included.
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    rnd = random.Random(7)
    messages = ["plain", 'quo"te', "com,ma", "{braces}", "back\\slash", "NULL", "ünï 📬", " lead space"]
    recipients = ["", "r@x.test", "NULL", 'q"r']
    history = [
        EventRow(account, rnd.choice(messages), rnd.choice(recipients), rnd.choice(list(EventType)).value,
                 rnd.uniform(0, 100), classification=rnd.choice(list(Classification)).value)
        for _ in range(400)
    ]  # fmt: skip
    cuts = sorted(rnd.sample(range(1, 400), 3))
    batches = [history[a:b] for a, b in zip([0, *cuts], [*cuts, 400], strict=True)]
    record_all(store, batches)
    for message in messages:
        first_batch = next(batch for batch in batches if any(r.message_id == message for r in batch))
        view = store.messages.get(account, message)
        mine = [row for row in history if row.message_id == message]
        assert view is not None, message
        # A message is created by the first batch that names it, at that batch's earliest event.
        created = min(r.at for r in first_batch if r.message_id == message)
        assert (view.message.registered, view.message.created_at) == (False, created)
        assert set(view.recipients) == {row.recipient for row in mine}
        for recipient, state in view.recipients.items():
            facts = [
                EventFacts(EventType(r.type), r.at, Classification(r.classification))
                for r in mine
                if r.recipient == recipient
            ]
            assert state == derive(facts), (message, recipient)


def test_offline_messages_get_a_row_and_unknown_ids_stay_separate(store: Store) -> None:
    first = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    second = store.accounts.ensure(f"b-{uuid.uuid4().hex[:8]}").id
    record_all(
        store,
        [[EventRow(first, "same-id", "x", "opened", 5.0), EventRow(second, "same-id", "y", "clicked", 6.0)]],
    )
    mine, theirs = store.messages.get(first, "same-id"), store.messages.get(second, "same-id")
    assert mine is not None
    assert theirs is not None
    assert (mine.message.registered, list(mine.recipients), mine.status.value) == (False, ["x"], "opened")
    assert (list(theirs.recipients), theirs.status.value) == (["y"], "clicked")


def test_a_repeated_event_id_is_stored_once(store: Store) -> None:
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    store.messages.register(MessageRecord(account, "idem", created_at=1.0), ["r"], [])
    row = EventRow(account, "idem", "r", "delivered", 2.0, event_id="esp-1")
    assert record_all(store, [[row, row], [row]]) == [True, True, True]
    view = store.messages.get(account, "idem")
    assert view is not None
    assert [e.type for e in view.events] == ["sent", "delivered"]


def test_every_column_is_stored_as_given(store: Store) -> None:
    """Hits go in by binary COPY on PostgreSQL: each field's type must survive the trip."""
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    full = EventRow(
        account, "col-1", "ü@example.org", "clicked", 1_733_000_000.123456, link=3,
        url="https://example.org/ä?q=1&r=€", classification="human", reasons="ua.browser pair",
        confidence=0.875, method="GET", ip="2001:db8::1", user_agent="Mozilla/5.0 (X11) «test»",
        headers='{"accept-language":"de-DE"}',
    )  # fmt: skip
    bare = EventRow(account, "col-2", "", "opened", 2.5)  # every nullable field NULL
    assert record_all(store, [[full, bare]]) == [True, True]
    columns = ", ".join(EventRow._fields)
    with store.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            f"SELECT {columns} FROM mb_events WHERE account_id = '{account}' ORDER BY message_id"
        ).all()
    assert [EventRow(*row) for row in stored] == [full, bare]


def test_stop_commits_what_is_queued(database_url: str) -> None:
    store = Store(database_url)
    store.upgrade()
    store.start()
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id

    async def queue_then_stop() -> None:
        futures = [store.recorder.record(EventRow(account, f"q{i}", "", "opened", 1.0)) for i in range(10)]
        store.recorder.stop()  # before the loop ran the scheduled flush
        assert [f.result() for f in futures] == [True] * 10

    asyncio.run(queue_then_stop())
    store.engine.dispose()
    reopened = Store(database_url)
    assert all(reopened.messages.get(account, f"q{i}") is not None for i in range(10))
    reopened.engine.dispose()
