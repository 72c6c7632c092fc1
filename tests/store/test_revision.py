"""Revision on each real database: the chunked read (``revise_many``) decides as ``revise_message`` does."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from mailbeacon.classify_data import classifier_for
from mailbeacon.config import Settings
from mailbeacon.store import EventRow, MessageRecord, Store
from mailbeacon.store.schema import events, recipients

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
HONEYPOT = json.dumps({"honeypot": True})


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    opened.upgrade()
    opened.reviser.classifier = classifier_for(Settings.from_env({}))
    opened.recorder.start()  # no reviser thread: each test revises when it says so
    try:
        yield opened
    finally:
        opened.close()


def history(account: str) -> dict[str, list[EventRow]]:
    """Messages whose revision changes something, and some whose revision changes nothing."""
    hit = {"ip": "198.51.100.7", "user_agent": CHROME, "method": "GET"}
    return {
        # The client followed the hidden link: its open and its other click are a machine's.
        "honeypot": [
            EventRow(account, "honeypot", "r", "opened", 100.0, classification="human", **hit),
            EventRow(account, "honeypot", "r", "clicked", 101.0, link=1, url="https://a.example/",
                     classification="human", **hit),
            EventRow(account, "honeypot", "r", "clicked", 102.0, link=9, url="https://trap.example/",
                     classification="human", detail=HONEYPOT, **hit),
        ],
        # A scanner walking every link within a second.
        "burst": [
            EventRow(account, "burst", "r", "clicked", 200.0 + i / 10, link=i, url=f"https://b.example/{i}",
                     classification="human", **hit)
            for i in range(1, 6)
        ],
        # A lone open as the request-time classifier saw it: nothing to revise.
        "quiet": [EventRow(account, "quiet", "r", "opened", 300.0, classification="unknown", **hit)],
        # An open with no request facts kept (privacy minimal), nothing else: unchanged.
        "minimal": [EventRow(account, "minimal", "r", "opened", 400.0, classification="unknown")],
    }  # fmt: skip


def load(store: Store, account: str) -> list[tuple[str, str]]:
    messages = history(account)
    for message_id in messages:
        store.messages.register(MessageRecord(account, message_id, created_at=1.0), ["r"], [])

    async def run() -> None:
        await asyncio.gather(*(store.recorder.record(row) for rows in messages.values() for row in rows))

    asyncio.run(run())
    return [(account, message_id) for message_id in messages]


def stored(store: Store, account: str) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str]]]:
    with store.engine.connect() as connection:
        hits = connection.execute(
            select(events.c.message_id, events.c.type, events.c.classification, events.c.reasons)
            .where(events.c.account_id == account, events.c.type != "sent")
            .order_by(events.c.message_id, events.c.seq)
        ).all()
        statuses = connection.execute(
            select(recipients.c.message_id, recipients.c.status)
            .where(recipients.c.account_id == account)
            .order_by(recipients.c.message_id)
        ).all()
    return [tuple(row) for row in hits], [tuple(row) for row in statuses]


def test_revise_many_decides_as_revise_message(store: Store) -> None:
    chunked = store.accounts.ensure(f"c-{uuid.uuid4().hex[:8]}").id
    single = store.accounts.ensure(f"s-{uuid.uuid4().hex[:8]}").id
    chunked_keys, single_keys = load(store, chunked), load(store, single)
    changed_chunked = store.reviser.revise_many(chunked_keys)
    changed_single = sum(store.reviser.revise_message(*key) for key in single_keys)

    assert changed_chunked == changed_single > 0
    hits, statuses = stored(store, chunked)
    assert (hits, statuses) == stored(store, single)
    by_message = {}
    for message_id, _type, classification, reasons in hits:
        by_message.setdefault(message_id, []).append((classification, reasons))
    assert all(c == "machine" and "honeypot" in r for c, r in by_message["honeypot"])
    assert any("burst_all_links" in r for _c, r in by_message["burst"])
    assert by_message["minimal"] == [("unknown", "")]


def test_revise_many_again_changes_nothing(store: Store) -> None:
    account = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    keys = load(store, account)
    assert store.reviser.revise_many(keys) > 0
    before = stored(store, account)
    assert store.reviser.revise_many(keys) == 0  # idempotent: the stored verdicts are the revised ones
    assert stored(store, account) == before


def test_revise_many_over_accounts_and_unknown_messages(store: Store) -> None:
    first = store.accounts.ensure(f"a-{uuid.uuid4().hex[:8]}").id
    second = store.accounts.ensure(f"b-{uuid.uuid4().hex[:8]}").id
    keys = load(store, first) + load(store, second) + [(first, "never-seen"), (second, "honeypot-x")]
    alone = store.reviser.revise_many(keys[:4])  # the first account's messages only
    assert alone > 0
    assert store.reviser.revise_many(keys) == alone  # the second account's, read apart, change as many
    one, two = stored(store, first), stored(store, second)
    assert one == two  # the same history in two accounts revises the same way, neither leaks into the other
    assert "never-seen" not in {message_id for message_id, *_ in one[0]}


def test_messages_queued_past_the_memory_bound_are_revised_all_the_same(store: Store) -> None:
    store.reviser._pending.memory_keys = 1  # every batch past the first key goes to the file
    spilled = store.accounts.ensure(f"s-{uuid.uuid4().hex[:8]}").id
    reference = store.accounts.ensure(f"r-{uuid.uuid4().hex[:8]}").id
    load(store, spilled)  # the recorder's listener queues the four touched messages
    assert store.reviser._pending.spilled >= 3
    assert len(store.reviser._pending) <= 1
    assert store.reviser.run_pending(30.0) is True
    assert store.reviser.run_pending(30.0) is False  # all of it was read back and revised
    store.reviser.revise_many(load(store, reference))
    assert stored(store, spilled) == stored(store, reference)
    hits, _ = stored(store, spilled)
    assert any("honeypot" in reasons for message_id, _t, _c, reasons in hits if message_id == "honeypot")
