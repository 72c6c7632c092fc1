"""Migrations on each real database, from an earlier revision with data in place."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from conftest import scratch_postgres_database
from mailbeacon.store import Store, migrate
from mailbeacon.store.engine import make_engine
from mailbeacon.store.messages import MessageFilter
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


@pytest.fixture
def linguistic_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own; on PostgreSQL one whose default collation is English
    (ICU ``en-US``, which sorts ``a`` before ``B``), as production databases often are."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'own.db'}"
        return
    with scratch_postgres_database(
        "mb_icu", "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0"
    ) as url:
        yield url


def test_0006_identifiers_sort_byte_by_byte_on_both_databases(linguistic_database_url: str) -> None:
    engine = make_engine(linguistic_database_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            for recipient in ("a@x", "B@x"):
                connection.execute(
                    text(
                        "INSERT INTO mb_recipients (account_id, message_id, recipient, status, status_rank) "
                        "VALUES ('a1', 'm1', :r, 'sent', 0)"
                    ),
                    {"r": recipient},
                )
        order = "SELECT recipient FROM mb_recipients ORDER BY recipient"
        with engine.connect() as connection:
            before = connection.execute(text(order)).scalars().all()
        # Before: the database's collation decides (English on PostgreSQL, bytes on SQLite).
        assert before == (["a@x", "B@x"] if engine.dialect.name == "postgresql" else ["B@x", "a@x"])
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text(order)).scalars().all() == ["B@x", "a@x"]
        if engine.dialect.name == "postgresql":
            # Every varchar column, including any a later migration adds, compares bytes.
            with engine.connect() as connection:
                other = (
                    connection.execute(
                        text(
                            "SELECT table_name || '.' || column_name FROM information_schema.columns "
                            "WHERE table_name LIKE 'mb\\_%' AND data_type = 'character varying' "
                            "AND collation_name IS DISTINCT FROM 'C'"
                        )
                    )
                    .scalars()
                    .all()
                )
            assert other == []
    finally:
        engine.dispose()
    store = Store(linguistic_database_url)
    try:  # the store works on the migrated schema: joins across the changed columns included
        store.upgrade()
        store.start()
        assert store.messages.get("a1", "m1") is None  # recipients alone are not a message
        assert [view.message.id for view in store.messages.page("a1", MessageFilter(), limit=10)[0]] == []
    finally:
        store.close()


def test_0006_downgrades_to_the_database_collation(own_database_url: str) -> None:
    engine = make_engine(own_database_url)
    try:
        upgrade(engine)
        config = Config()
        config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                changed = connection.execute(
                    text(
                        "SELECT count(*) FROM information_schema.columns "
                        "WHERE table_name LIKE 'mb\\_%' AND collation_name = 'C'"
                    )
                ).scalar_one()
            assert changed == 0
        upgrade(engine)  # and up again
    finally:
        engine.dispose()


def test_0007_campaign_index_is_partial_and_still_serves_the_campaign_filter(own_database_url: str) -> None:
    engine = make_engine(own_database_url)
    try:
        upgrade(engine)
        index = next(
            i for i in inspect(engine).get_indexes("mb_messages") if i["name"] == "ix_mb_messages_campaign"
        )
        where = index.get("dialect_options", {}).get(f"{engine.dialect.name}_where")
        assert "campaign IS NOT NULL" in str(where)
        insert = text(
            "INSERT INTO mb_messages (account_id, id, channel, campaign, created_at, registered) "
            "VALUES ('a1', :id, 'email', :campaign, 1, true)"
        )
        with engine.begin() as connection:
            connection.execute(insert, [{"id": f"m{i}", "campaign": None} for i in range(50)])
            connection.execute(insert, [{"id": "s1", "campaign": "spring"}, {"id": "s2", "campaign": "fall"}])
        query = "SELECT id FROM mb_messages WHERE account_id = :a AND campaign = :c"
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SET enable_seqscan = off"))  # 52 rows: it would scan them
                plan = (
                    connection.execute(text(f"EXPLAIN {query}"), {"a": "a1", "c": "spring"}).scalars().all()
                )
            else:
                plan = [
                    row[-1]
                    for row in connection.execute(
                        text(f"EXPLAIN QUERY PLAN {query}"), {"a": "a1", "c": "spring"}
                    )
                ]
            assert "ix_mb_messages_campaign" in " ".join(plan)
            assert connection.execute(text(query), {"a": "a1", "c": "spring"}).scalars().all() == ["s1"]
    finally:
        engine.dispose()
