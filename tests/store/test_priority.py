"""The ingester's scheduling class (store.priority), checked on this thread's real class.

Each test runs the switching on a thread of its own (the class belongs to a thread), or in a
child process when it needs other limits, so the test process keeps its own class.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

from mailbeacon.store.priority import BackgroundPriority, can_leave_idle

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only")

T = TypeVar("T")


def _on_a_thread(work: Callable[[], T]) -> T:
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    assert result, "the work on the thread raised (see the output above)"
    return result[0]


@pytest.mark.skipif(not can_leave_idle(), reason="needs CAP_SYS_NICE or RLIMIT_NICE (root has it)")
def test_idle_while_it_keeps_up_normal_once_behind_and_idle_again_when_caught_up() -> None:
    def work() -> list[int]:
        priority = BackgroundPriority(max_lag=4.0)
        classes = [os.sched_getscheduler(0)]
        assert priority.start()
        classes.append(os.sched_getscheduler(0))
        for lag in (3.9, 4.5, 2.0, 0.9, 0.0):  # keeping up, behind, catching up, caught up, idle
            priority.after_round(lag)
            classes.append(os.sched_getscheduler(0))
        assert priority.switches == 2
        return classes

    idle, other = os.SCHED_IDLE, os.SCHED_OTHER
    assert _on_a_thread(work) == [other, idle, idle, other, other, idle, idle]
    assert os.sched_getscheduler(0) == other  # this thread was never touched


def test_a_max_lag_of_0_leaves_the_class_alone() -> None:
    def work() -> tuple[bool, int]:
        priority = BackgroundPriority(max_lag=0)
        started = priority.start()
        priority.after_round(100.0)
        return started, os.sched_getscheduler(0)

    assert _on_a_thread(work) == (False, os.SCHED_OTHER)


_CHILD = """
import os, resource, sys
from mailbeacon.store.priority import BackgroundPriority
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NICE, (limit, limit))
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)  # nobody: no CAP_SYS_NICE
os.nice(10)
priority = BackgroundPriority(max_lag=5.0)
started = priority.start()
first = os.sched_getscheduler(0)
priority.after_round(60.0)
print(started, first == os.SCHED_IDLE, os.sched_getscheduler(0) == os.SCHED_OTHER)
"""


def _child(rlimit_nice: int) -> str:
    command = [sys.executable, "-c", _CHILD, str(rlimit_nice)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("\n")[0]


def test_without_the_right_to_leave_idle_it_never_enters_it() -> None:
    # RLIMIT_NICE 0 and no CAP_SYS_NICE: a thread in the idle class could never come back.
    assert _child(0) == "False False True"


def test_pacing_waits_as_long_as_a_round_took_while_keeping_up_and_not_once_behind() -> None:
    priority = BackgroundPriority(max_lag=4.0, pace=True)  # without start: the class stays as it is
    pauses = []
    for lag in (1.0, 4.5, 2.0, 0.9, 0.0):  # keeping up, behind, catching up, caught up, at rest
        priority.after_round(lag)
        pauses.append(priority.pause(0.03))
    assert pauses == [0.03, 0.0, 0.0, 0.03, 0.03]
    assert priority.switches == 0  # pacing alone never touches the class
    assert not priority.idle


@pytest.mark.parametrize(("max_lag", "pace"), [(4.0, False), (0.0, True)])
def test_no_pacing_for_sqlite_or_with_a_max_lag_of_0(max_lag: float, pace: bool) -> None:
    priority = BackgroundPriority(max_lag=max_lag, pace=pace)
    priority.after_round(0.5)
    assert priority.pause(0.03) == 0.0
