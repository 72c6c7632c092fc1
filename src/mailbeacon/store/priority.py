"""The ingester's CPU priority: out of the request path's way while it keeps up.

A hit is durable once it is in the hit log (``store.hitlog``); the database may
trail it. So ``mailbeacon serve``'s ingester process (``store.ingest``) runs in
Linux's idle scheduling class (``SCHED_IDLE``) while it keeps up: it gets a core
only when nothing else wants one, and a task that wakes takes the core from it at
once, where niceness only gives it a smaller share. Measured with ``wrk -t1
-c64`` on two cores, each class in turn (``docs/server.md``): the server
answered more hits a second in the idle class, and the HTTP worker and the
ingester each spent less CPU per hit.

The idle class alone could starve the ingester under an overload that lasts,
and the database would fall further behind for as long as it lasts. So once a
round's oldest hit is more than ``max_lag`` seconds old, the ingester returns
to the normal class at its niceness and shares the CPU with the request path
as it did before; it goes back to the idle class once it has caught up (a
round's oldest hit younger than a quarter of ``max_lag``). A burst is absorbed
in the hit log for up to ``max_lag``; past that, the server gives up the extra
throughput to store hits. Where hits arrive faster than the machine can store
them even then, the database trails until the load eases, as it did before
(the hits are durable in the hit log meanwhile).

The idle class covers the ingester's own CPU. On PostgreSQL most of a hit's
database work runs in the server's backend, a process the ingester may not
reschedule, and it took the CPU from the request path at normal priority. So
there the ingester paces itself instead, under the same valve: after a round
large enough to mean load, it waits as long as the round took before the next
one (``pause``), which gives the database at most about half of the time the
ingester would otherwise keep it busy. Measured with ``wrk -t1 -c64`` on two
cores on PostgreSQL, three alternated pairs (``docs/server.md``): 25,775 hits
a second without pacing, 29,585 with it (medians; more in every pair), the
database 5.5-6.4 s behind when the 10 s run ended instead of ~1. At rest,
rounds are small and nothing waits.

Linux lets a thread leave the idle class only with ``CAP_SYS_NICE`` or a
``RLIMIT_NICE`` that allows its niceness (systemd ``LimitNICE=+10``, docker
``--ulimit nice=10``). ``start`` tries that first, on a thread of its own (the
class belongs to a thread): without it the ingester stays in the normal class at
its niceness, as a ``max_lag`` of 0 asks, and the log says why.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Final

__all__ = ["BackgroundPriority", "can_leave_idle"]

log = logging.getLogger("mailbeacon.priority")

_IDLE: Final[int | None] = getattr(os, "SCHED_IDLE", None)  # Linux only
_OTHER: Final[int] = getattr(os, "SCHED_OTHER", 0)
_CATCH_UP: Final = 0.25  # back to the idle class below this share of max_lag


def _set(policy: int) -> None:
    os.sched_setscheduler(0, policy, os.sched_param(0))  # 0: the calling thread


def can_leave_idle() -> bool:
    """Whether this thread could enter the idle class and leave it again (tried on a new
    thread, which has this one's class and niceness, so this one is left as it is)."""
    if _IDLE is None:
        return False
    outcome: list[bool] = []

    def attempt() -> None:
        try:
            _set(_IDLE)
            _set(_OTHER)
        except OSError:
            outcome.append(False)
        else:
            outcome.append(True)

    probe = threading.Thread(target=attempt, name="mailbeacon-priority-probe")
    probe.start()
    probe.join()
    return outcome == [True]


class BackgroundPriority:
    """The calling thread's scheduling class, and the ingester's pace, by how far behind
    the hits it is.

    ``start`` once, from the thread that ingests; then ``after_round(lag)`` after every
    round, with the age in seconds of the round's oldest hit (0 when it had none), and
    ``pause(took)`` after a busy round. ``pace`` asks for pausing (a database server in
    another process)."""

    def __init__(self, max_lag: float, *, pace: bool = False) -> None:
        self.max_lag = max_lag
        self._pace = pace and max_lag > 0
        self._idle_class: int | None = None  # SCHED_IDLE once start found it can be left again
        self.behind = False  # past max_lag, until caught up: no yielding then
        self.switches = 0  # times it left or re-entered the idle class, for the log and tests

    @property
    def idle(self) -> bool:
        """Whether the thread is in the idle class now."""
        return self._idle_class is not None and not self.behind

    def start(self) -> bool:
        """Enter the idle class, if ``max_lag`` asks for it and the thread may leave it again."""
        if self.max_lag <= 0 or _IDLE is None:
            return False
        if not can_leave_idle():
            log.info(
                "the ingester stays in the normal scheduling class: leaving the idle class needs "
                "CAP_SYS_NICE or a higher RLIMIT_NICE (MAILBEACON_BACKGROUND_MAX_LAG, docs/configuration.md)"
            )
            return False
        self._idle_class = _IDLE
        _set(_IDLE)
        return True

    def after_round(self, lag: float) -> None:
        if self._idle_class is None and not self._pace:
            return  # nothing yields, so nothing changes
        if not self.behind and lag > self.max_lag:
            self.behind = True
            log.info("the ingester is %.1f s behind the hits: it shares the CPU with requests now", lag)
        elif self.behind and lag < self.max_lag * _CATCH_UP:
            self.behind = False
            log.info("the ingester has caught up: it yields to requests again")
        else:
            return
        if self._idle_class is not None:
            _set(_OTHER if self.behind else self._idle_class)
            self.switches += 1

    def pause(self, took: float) -> float:
        """Seconds to wait after a busy round that took ``took``: as long again while pacing
        and keeping up, else none."""
        return took if self._pace and not self.behind else 0.0
