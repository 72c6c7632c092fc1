"""One real server per database for the whole session; each test makes its own account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbeacon.config import generate_keyring

from .harness import Server
from .webhook_harness import FAST

# The shared server's tests hit a message right after creating it; with the timing windows
# at zero those hits are judged by the request alone (tests/server/test_classification.py
# reports a delivery in the past to exercise timing on a server with the defaults).
NO_WINDOWS = {
    f"MAILBEACON_CLASSIFY_{name}": "0"
    for name in ("INSTANT_SECONDS", "OPEN_WINDOW", "CLICK_WINDOW", "PROBABLE_WINDOW")
}


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # No webhook worker: it shares the database with the webhook tests' servers, which allow
    # loopback receivers; this one would claim their deliveries and refuse to send them.
    running = Server(
        database_url,
        tmp_path_factory.mktemp("server"),
        generate_keyring().to_spec(),
        extra_env={**NO_WINDOWS, "MAILBEACON_WEBHOOK_WORKER": "false"},
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def key(server: Server) -> str:
    """The API key of a sender account of this test's own."""
    return server.new_account(f"acct-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def fresh_server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server of this test's own (to kill, restart or configure differently)."""
    running = Server(database_url, tmp_path, generate_keyring().to_spec())
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def hook_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("hooks")
    running = Server(database_url, folder, generate_keyring().to_spec(), extra_env=FAST).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def hook_key(hook_server: Server) -> str:
    return hook_server.new_account(f"hooks-{uuid.uuid4().hex[:10]}")
