"""Shared fixtures: a fixed key ring so tests are deterministic."""

from __future__ import annotations

import pytest

from guard.plugin import activate, pytest_runtest_makereport, pytest_sessionfinish
from mailbeacon import Key, KeyRing, Tracker
from mailbeacon.store import Store

# No packet leaves this machine during the tests, from this process or any it starts
# (tests/guard/loopback_guard.py says how); these hooks fail a test the guard refused.
activate()
__all__ = ["pytest_runtest_makereport", "pytest_sessionfinish"]

SECRET_1 = bytes(range(32))
SECRET_2 = bytes(range(100, 132))


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([Key("k1", SECRET_1)])


@pytest.fixture
def tracker(ring: KeyRing) -> Tracker:
    return Tracker("https://t.example.com", keys=ring, clock=lambda: 1_700_000_000.0)


# -- real servers and real databases ---------------------------------------------------------
# Every store and server test runs twice: on SQLite in a temporary directory and on the
# PostgreSQL server of the test machine (a fresh database per session). Without PostgreSQL
# those runs skip, except with CI=true, where they fail: CI must not go green by skipping.

import contextlib  # noqa: E402
import os  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

POSTGRES_URL = os.environ.get("MAILBEACON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_or_skip() -> None:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable ({str(exc).strip()[:120]})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; with CI=true PostgreSQL tests must run")
        pytest.skip(reason)


@contextlib.contextmanager
def scratch_postgres_database(prefix: str, options: str = "") -> Iterator[str]:
    """A new PostgreSQL database named ``prefix`` and a random suffix, created with ``options``
    (``CREATE DATABASE name options``), dropped afterwards; yields its URL."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {} " + options).format(sql.Identifier(name)))
    try:
        yield f"{POSTGRES_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this session, dropped at the end."""
    _postgres_or_skip()
    with scratch_postgres_database("mb_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'mailbeacon.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def own_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, on the same kind of server as ``database_url``.

    For a test that must know who delivers: the session's ``hook_server`` runs a webhook
    worker on the shared database, and it claims any account's pending deliveries.
    """
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'own.db'}"
        return
    with scratch_postgres_database("mb_own") as url:
        yield url


# -- a started store -------------------------------------------------------------------------------


def _started(url: str) -> Iterator[Store]:
    opened = Store(url)
    opened.upgrade()
    opened.start()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A started store on the session's database, closed after the test."""
    yield from _started(database_url)


@pytest.fixture
def own_store(own_database_url: str) -> Iterator[Store]:
    """A started store on a database of this test's own, closed after the test."""
    yield from _started(own_database_url)
