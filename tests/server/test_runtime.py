"""Starting the server from the environment: generated keys, privacy levels, migrations."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import httpx
import pytest

from mailbeacon import KeyRing
from mailbeacon.store.priority import can_leave_idle

from .harness import Server


def _opened_event(server: Server, user_agent: str) -> dict[str, object]:
    key = server.new_account("default")
    message_id = f"privacy-{uuid.uuid4().hex}"
    url = server.tracker().open_url(message_id=message_id, recipient="r")
    assert httpx.get(url, headers={"User-Agent": user_agent}).status_code == 200
    events = server.client(key).get(f"/api/v1/messages/{message_id}").json()["events"]
    (opened,) = [e for e in events if e["type"] == "opened"]
    return dict(opened)


@pytest.mark.parametrize(
    ("level", "ip", "ua"),
    [("full", "127.0.0.1", "Agent/1"), ("anonymized", "127.0.0.0", "Agent/1"), ("minimal", None, None)],
)
def test_privacy_level_decides_what_is_kept(
    fresh_server: Server, level: str, ip: str | None, ua: str | None
) -> None:
    fresh_server.extra_env["MAILBEACON_PRIVACY"] = level
    event = _opened_event(fresh_server.start(), "Agent/1")
    assert (event["ip"], event["user_agent"]) == (ip, ua)


def test_keys_are_generated_once_into_the_data_dir_and_reused(fresh_server: Server) -> None:
    fresh_server.keys = ""  # no MAILBEACON_KEYS
    fresh_server.start()
    spec = (fresh_server.data_dir / "keys").read_text().strip()
    assert (fresh_server.data_dir / "keys").stat().st_mode & 0o777 == 0o600
    url = (
        KeyRing.parse(spec)
        and fresh_server.cli(
            "token",
            "encode",
            "--url",
            "https://ex.com/",
            "--message-id",
            "m",
            "--base-url",
            fresh_server.base,
        ).stdout.strip()
    )
    fresh_server.stop()
    fresh_server.keys = spec
    fresh_server.start()
    assert httpx.get(url).status_code == 302  # minted with the generated key, verified after a restart


def test_db_upgrade_and_bad_settings_fail_in_one_line(fresh_server: Server) -> None:
    assert fresh_server.cli("db", "upgrade").stdout.strip() == "database schema is current"
    fresh_server.extra_env["MAILBEACON_PRIVACY"] = "everything"
    failed = fresh_server.cli("serve", "--port", "1", check=False)
    assert failed.returncode != 0
    assert failed.stderr.strip().splitlines() == [
        "Error: MAILBEACON_PRIVACY must be one of full, anonymized, minimal, not 'everything'"
    ]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


@pytest.mark.skipif(not can_leave_idle(), reason="needs CAP_SYS_NICE or RLIMIT_NICE (root has it)")
@pytest.mark.parametrize(("max_lag", "policy"), [(None, "SCHED_IDLE"), ("0", "SCHED_OTHER")])
def test_the_ingester_runs_in_the_idle_class_unless_told_not_to(
    fresh_server: Server, max_lag: str | None, policy: str
) -> None:
    if max_lag is not None:
        fresh_server.extra_env["MAILBEACON_BACKGROUND_MAX_LAG"] = max_lag
    fresh_server.start()
    assert fresh_server.process is not None
    (ingester,) = _children(fresh_server.process.pid)  # one HTTP worker: the only child is the ingester
    assert os.sched_getscheduler(ingester) == getattr(os, policy)
    assert os.getpriority(os.PRIO_PROCESS, ingester) == 10  # its niceness, for when it leaves the class
    assert os.sched_getscheduler(fresh_server.process.pid) == os.SCHED_OTHER  # requests never wait on it
    # and it still ingests: a hit reaches the API
    assert _opened_event(fresh_server, "Agent/1")["type"] == "opened"
