"""The delivery worker: claims due deliveries from the outbox, signs them, posts them, retries.

``mailbeacon serve`` runs it in its ingester process, on the same event loop as the
ingester (``store.ingest.run_process``), so the process that commits the outbox rows
wakes it at once and, on SQLite, its writes never queue behind another process's for
the write lock; ``mailbeacon worker`` runs more of them, anywhere, since claims never
overlap (``store.deliveries``); an app built without ``serve`` runs one on its own loop.
Without a wake-up it polls, every 50 ms while there is work, backing off to 1 s
when idle. The endpoints and events of a claimed batch are read in one query each, and
the outcomes of the attempts that finished meanwhile are recorded in the same
transaction that claims the next batch (``DeliveryStore.finish_and_claim``).
Sending happens on its own tasks with a bounded concurrency (a batch claims only as
many as can start at once), and never on the tracking path: a slow receiver delays only
its own deliveries.

Rules per attempt: 2xx delivered; 410 Gone disables the endpoint; anything
else (including a timeout, a refused address, a 3xx) is retried on the
``RetryPolicy`` schedule, honouring ``Retry-After``; when the schedule is
used up the delivery is ``failed``; an endpoint without a success for
``disable_after`` seconds is disabled, with the reason kept and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mailbeacon._aio import wait_event
from mailbeacon.store import Claimed, Endpoint, Finished, Store
from mailbeacon.webhooks.policy import RetryPolicy, event_body
from mailbeacon.webhooks.signing import sign_headers
from mailbeacon.webhooks.ssrf import Resolver

if TYPE_CHECKING:
    from mailbeacon.webhooks.sender import Sender

__all__ = ["DeliveryWorker", "policy_from"]

log = logging.getLogger("mailbeacon.webhooks")
T = TypeVar("T")


def policy_from(settings: Any) -> RetryPolicy:
    """The retry policy that ``MAILBEACON_WEBHOOK_RETRY_SCHEDULE`` and ``..._DISABLE_AFTER`` describe."""
    if settings.webhook_retry_schedule is None:
        return RetryPolicy(disable_after=settings.webhook_disable_after)
    return RetryPolicy(schedule=settings.webhook_retry_schedule, disable_after=settings.webhook_disable_after)


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 15.0,
        allow_private: bool = False,
        concurrency: int = 512,
        poll: float = 1.0,
        busy_poll: float = 0.05,
        batch: int = 500,
        resolver: Resolver | None = None,
        db_on_loop: bool = False,
    ) -> None:
        """``db_on_loop``: run the database calls on the event loop's thread (a process whose
        loop does nothing else: ``serve``'s ingester, ``mailbeacon worker``), not in a thread.
        A thread waits for the GIL at every SQLite step while the loop is busy sending:
        measured here, claims took 3-10x longer and varied from run to run."""
        self.store = store
        self.db_on_loop = db_on_loop
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.allow_private = allow_private
        self.poll = poll
        self.busy_poll = min(busy_poll, poll)
        self.batch = batch
        self._resolver = resolver
        self.concurrency = concurrency
        self._slot_freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._finished: list[Finished] = []  # attempts made, not yet recorded
        self._disables: dict[str, tuple[Endpoint, str]] = {}
        self.sent = 0
        self.failed = 0

    def wake(self, _rows: Any = None) -> None:
        """Recorder listener: something was committed, look for due deliveries now."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @classmethod
    def from_settings(cls, store: Store, settings: Any, *, db_on_loop: bool = False) -> DeliveryWorker:
        """The worker that ``settings`` (the MAILBEACON_WEBHOOK_* variables) describe."""
        return cls(
            store,
            policy=policy_from(settings),
            timeout=settings.webhook_timeout,
            allow_private=settings.webhook_allow_private,
            db_on_loop=db_on_loop,
        )

    def _sender(self) -> Sender:
        # Imported on the first delivery: aiohttp is ~10 MB of a process's memory, and a
        # server without webhook endpoints never needs it.
        from mailbeacon.webhooks.sender import Sender

        return Sender(
            timeout=self.timeout,
            allow_private=self.allow_private,
            resolver=self._resolver,
            connections=self.concurrency,
        )

    async def run(self) -> None:
        sender: Sender | None = None
        # Woken by commits (``wake``: this process's, or another's through store.wakeup), and
        # polling as the backstop: every ``busy_poll`` while there is work, backing off to
        # ``poll`` when idle. Attempts that finished meanwhile are recorded in the same
        # transaction as the next claim.
        delay = self.busy_poll
        try:
            while True:
                room = await self._room()
                finished, disables = self._take()
                try:
                    claimed = await self._db(self._exchange, finished, disables, room)
                    endpoints, bodies = await self._db(self._prepare, claimed)
                except Exception:
                    # Unrecorded attempts are claimed again when their lease expires: at least once.
                    log.exception("could not claim webhook deliveries or record attempts; retrying")
                    claimed, endpoints, bodies = [], {}, {}
                self._wake_for_retries(finished)
                if claimed:
                    sender = sender or self._sender()
                    self._start(sender, claimed, endpoints, bodies)
                if len(claimed) < room or not room:
                    busy = claimed or self._inflight or self._finished
                    delay = self.busy_poll if busy else min(self.poll, delay * 2)
                    self._wake.clear()
                    await wait_event(self._wake, delay)
        finally:
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            # What was sent is recorded (else it would be sent again when its lease expires).
            finished, disables = self._take()
            try:
                await self._db(self._exchange, finished, disables, 0)
            except Exception:
                log.exception("could not record webhook attempts; they will be claimed again")
            if sender is not None:
                await sender.close()

    def _start(
        self, sender: Sender, claimed: list[Claimed], endpoints: dict[str, Endpoint], bodies: dict[str, str]
    ) -> None:
        for delivery in claimed:
            endpoint = endpoints.get(delivery.endpoint_id)
            body = bodies.get(delivery.id)
            if endpoint is None or not endpoint.enabled or body is None:
                continue  # its lease expires; a re-enabled endpoint gets it then
            task = asyncio.create_task(self._deliver(sender, delivery, endpoint, body))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        return call(*args) if self.db_on_loop else await asyncio.to_thread(call, *args)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slot_freed.set()

    async def _room(self) -> int:
        """How many deliveries to claim: only as many as can start now, and at least a quarter
        of the slots' worth (or all that are free when nothing is in flight), so that the
        claimed ones all start at once and their lease runs from their start (a claimed
        delivery waiting behind hung receivers could outlive its lease and go out twice)."""
        enough = max(1, min(self.batch, self.concurrency) // 4)
        deadline = time.monotonic() + self.poll  # finished attempts still get recorded
        while self.concurrency - len(self._inflight) < enough and self._inflight:
            self._slot_freed.clear()
            await wait_event(self._slot_freed, max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                break
        return max(0, min(self.batch, self.concurrency - len(self._inflight)))

    def _prepare(self, claimed: list[Claimed]) -> tuple[dict[str, Endpoint], dict[str, str]]:
        """The claimed deliveries' endpoints and bodies: one query for each, not one per delivery."""
        if not claimed:
            return {}, {}
        endpoints = self.store.endpoints.get_many(c.endpoint_id for c in claimed)
        seqs = [c.event_seq for c in claimed if c.payload is None and c.event_seq is not None]
        found = self.store.deliveries.events(seqs)
        bodies: dict[str, str] = {}
        by_event: dict[int, str] = {}  # an event goes to each of its endpoints in one body
        for c in claimed:
            if c.payload is not None:
                bodies[c.id] = c.payload
            elif c.event_seq is not None and c.event_seq in found:
                body = by_event.get(c.event_seq)
                if body is None:
                    body = by_event[c.event_seq] = event_body(*found[c.event_seq])
                bodies[c.id] = body
        return endpoints, bodies

    async def _deliver(self, sender: Sender, claimed: Claimed, endpoint: Endpoint, body: str) -> None:
        try:
            await self._attempt(sender, claimed, endpoint, body)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s crashed; it will be claimed again", claimed.id)

    async def _attempt(self, sender: Sender, claimed: Claimed, endpoint: Endpoint, body: str) -> None:
        started = time.time()
        headers = sign_headers(claimed.id, int(started), body, endpoint.signing_secrets(started))
        outcome = await sender.post(endpoint.url, body, headers)
        duration = time.time() - started
        decision = self.policy.decide(outcome, claimed.attempts + 1, endpoint.failing_since, started)
        next_at = None if decision.next_delay is None else started + duration + decision.next_delay
        self._finished.append(
            Finished(
                claimed, started, outcome.status_code, outcome.error, duration, next_at, outcome.delivered
            )
        )
        if outcome.delivered:
            self.sent += 1
        else:
            self.failed += 1
            if decision.disable is not None:
                self._disables.setdefault(endpoint.id, (endpoint, decision.disable))

    def _wake_for_retries(self, finished: list[Finished]) -> None:
        """A retry due sooner than the next poll (the schedule's first is seconds): wake for it."""
        now = time.time()
        soonest = min(
            (f.next_at for f in finished if f.next_at is not None and f.next_at - now < self.poll),
            default=None,
        )
        if soonest is not None:
            asyncio.get_running_loop().call_later(max(0.0, soonest - now), self.wake)

    def _take(self) -> tuple[list[Finished], list[tuple[Endpoint, str]]]:
        """What finished so far (on the loop's thread, where the attempts append)."""
        finished, self._finished = self._finished, []
        disables, self._disables = self._disables, {}
        return finished, list(disables.values())

    def _exchange(
        self, finished: list[Finished], disables: list[tuple[Endpoint, str]], room: int
    ) -> list[Claimed]:
        """Record ``finished`` and claim up to ``room`` due deliveries in one transaction; then
        disable ``disables``. The lease outlasts the attempt's deadline (and DNS)."""
        claimed = self.store.deliveries.finish_and_claim(finished, room, self.timeout + 30)
        for endpoint, reason in disables:
            self.store.deliveries.disable(endpoint.id, reason)
            self.store.endpoints.invalidate()
            log.warning(
                "webhook endpoint disabled",
                extra={"endpoint": endpoint.id, "account": endpoint.account_id, "reason": reason},
            )
        return claimed
