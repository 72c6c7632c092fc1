"""pytest side of the loopback guard: install it, export it to subprocesses, fail on any refusal.

``tests/conftest.py`` imports these hooks. A test during which the guard refused
something (in this process, or logged by a subprocess meanwhile) fails even if
the code under test swallowed the error; a refusal logged after its test ended
(a server delivering late) fails the session.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import loopback_guard

_LOG = Path(tempfile.mkstemp(prefix="mailbeacon-guard-", suffix=".log")[1])


def activate() -> None:
    """Guard this process and every Python process started from it (through the environment)."""
    os.environ[loopback_guard.ENV_LOG] = str(_LOG)
    os.environ.update(loopback_guard.child_environment())
    loopback_guard.install()


def _size() -> int:
    return _LOG.stat().st_size if _LOG.exists() else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    before = getattr(item, "_guard_log_size", None)
    if call.when == "setup":
        before = item._guard_log_size = _size()  # type: ignore[attr-defined]
    outcome = yield
    report = outcome.get_result()
    if call.when != "teardown" or before is None or _size() == before or report.failed:
        return
    with _LOG.open(encoding="utf-8") as log:
        log.seek(before)
        new = log.read()
    report.outcome = "failed"
    report.longrepr = f"the loopback guard refused traffic during this test:\n{new}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _size():
        text = _LOG.read_text(encoding="utf-8")
        print(f"\nloopback guard: refusals were logged ({_LOG}):\n{text[-4000:]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        _LOG.unlink(missing_ok=True)
