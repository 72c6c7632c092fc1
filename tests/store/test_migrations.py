"""Migrations on each real database, from an earlier revision with data in place."""

from __future__ import annotations

from sqlalchemy import inspect, text

from mailbeacon.store import Store
from mailbeacon.store.engine import make_engine
from mailbeacon.store.migrate import upgrade


def test_0005_drops_the_messages_account_key_and_keeps_every_row(own_database_url: str) -> None:
    engine = make_engine(own_database_url)
    try:
        upgrade(engine, "0004")
        assert [key["referred_table"] for key in inspect(engine).get_foreign_keys("mb_messages")] == [
            "mb_accounts"
        ]
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO mb_accounts (id, name, created_at) VALUES ('a1', 'one', 1)"))
            connection.execute(
                text(
                    "INSERT INTO mb_messages (account_id, id, channel, campaign, created_at, registered) "
                    "VALUES ('a1', 'm1', 'email', 'spring', 2, true)"
                )
            )
        upgrade(engine)
        assert inspect(engine).get_foreign_keys("mb_messages") == []
        # The rebuilt table (SQLite) kept its rows and its indexes.
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT account_id, id, campaign FROM mb_messages")).all()
        assert [tuple(row) for row in rows] == [("a1", "m1", "spring")]
        names = {index["name"] for index in inspect(engine).get_indexes("mb_messages")}
        assert {"ix_mb_messages_created", "ix_mb_messages_campaign"} <= names
        upgrade(engine)  # idempotent
    finally:
        engine.dispose()
    store = Store(own_database_url)
    try:  # the store works on the migrated schema
        store.upgrade()
        assert store.messages.exists("a1", "m1")
    finally:
        store.close()
