"""The delivery worker: claims due deliveries from the outbox, signs them, posts them, retries.

It runs inside ``mailbeacon serve`` (one per server process) or alone as
``mailbeacon worker``; any number may run against one database, since
claims never overlap (``store.deliveries``). A commit in this process wakes
it at once (so a hit reaches a receiver in milliseconds); otherwise it polls, every
50 ms while there is work and backing off to 1 s when idle. The endpoints and events of
a claimed batch are read in one query each, and the outcomes of the attempts that
finish meanwhile are recorded in one transaction (``DeliveryStore.finish_many``).
Sending happens on its own tasks with a bounded concurrency, and never on
the recorder's path: a slow receiver delays only its own deliveries.

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
from typing import Any

from mailbeacon.store import Claimed, Endpoint, Finished, Store
from mailbeacon.webhooks.policy import RetryPolicy, event_body
from mailbeacon.webhooks.sender import Sender
from mailbeacon.webhooks.signing import sign_headers
from mailbeacon.webhooks.ssrf import Resolver

__all__ = ["DeliveryWorker", "policy_from"]

log = logging.getLogger("mailbeacon.webhooks")


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
        concurrency: int = 64,
        poll: float = 1.0,
        busy_poll: float = 0.05,
        batch: int = 200,
        resolver: Resolver | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.allow_private = allow_private
        self.poll = poll
        self.busy_poll = min(busy_poll, poll)
        self.batch = batch
        self._resolver = resolver
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._finished: list[Finished] = []  # attempts made, not yet recorded
        self._disables: dict[str, tuple[Endpoint, str]] = {}
        self._have_finished = asyncio.Event()
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

    async def run(self) -> None:
        sender = Sender(timeout=self.timeout, allow_private=self.allow_private, resolver=self._resolver)
        recorder = asyncio.create_task(self._record_loop())
        # Commits in another process (the ingester) cannot wake this one: poll every
        # ``busy_poll`` while there is work, backing off to ``poll`` when idle.
        delay = self.busy_poll
        try:
            while True:
                try:
                    claimed = await self._claim()
                    endpoints, bodies = await asyncio.to_thread(self._prepare, claimed)
                except Exception:
                    log.exception("could not claim webhook deliveries; retrying")
                    claimed, endpoints, bodies = [], {}, {}
                for delivery in claimed:
                    endpoint = endpoints.get(delivery.endpoint_id)
                    body = bodies.get(delivery.id)
                    if endpoint is None or not endpoint.enabled or body is None:
                        continue  # its lease expires; a re-enabled endpoint gets it then
                    await self._slots.acquire()
                    task = asyncio.create_task(self._deliver(sender, delivery, endpoint, body))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if len(claimed) < self.batch:
                    delay = self.busy_poll if claimed else min(self.poll, delay * 2)
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            # What was sent is recorded (else it would be sent again when its lease expires).
            finished, disables = self._take()
            try:
                await asyncio.to_thread(self._write, finished, disables)
            except Exception:
                log.exception("could not record webhook attempts; they will be claimed again")
            await sender.close()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _claim(self) -> list[Claimed]:
        # The lease outlasts the attempt's deadline (and DNS): then it is claimable again.
        return await asyncio.to_thread(self.store.deliveries.claim, self.batch, self.timeout + 30)

    def _prepare(self, claimed: list[Claimed]) -> tuple[dict[str, Endpoint], dict[str, str]]:
        """The claimed deliveries' endpoints and bodies: one query for each, not one per delivery."""
        if not claimed:
            return {}, {}
        endpoints = self.store.endpoints.get_many(c.endpoint_id for c in claimed)
        seqs = [c.event_seq for c in claimed if c.payload is None and c.event_seq is not None]
        found = self.store.deliveries.events(seqs)
        bodies: dict[str, str] = {}
        for c in claimed:
            if c.payload is not None:
                bodies[c.id] = c.payload
            elif c.event_seq is not None and c.event_seq in found:
                bodies[c.id] = event_body(*found[c.event_seq])
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
        self._have_finished.set()

    async def _record_loop(self) -> None:
        """Record finished attempts in batches: one transaction for all that finished meanwhile."""
        while True:
            await self._have_finished.wait()
            self._have_finished.clear()
            finished, disables = self._take()
            try:
                retries = await asyncio.to_thread(self._write, finished, disables)
            except Exception:
                log.exception("could not record webhook attempts; they will be claimed again")
                continue
            now = time.time()
            soonest = min((at for at in retries if at - now < self.poll), default=None)
            if soonest is not None:  # a short retry: do not wait for the poll
                asyncio.get_running_loop().call_later(max(0.0, soonest - now), self.wake)

    def _take(self) -> tuple[list[Finished], list[tuple[Endpoint, str]]]:
        """What finished so far (on the loop's thread, where the attempts append)."""
        finished, self._finished = self._finished, []
        disables, self._disables = self._disables, {}
        return finished, list(disables.values())

    def _write(self, finished: list[Finished], disables: list[tuple[Endpoint, str]]) -> list[float]:
        """Record ``finished`` in one transaction, disable ``disables``; the retry times to wake for."""
        if finished:
            self.store.deliveries.finish_many(finished)
        for endpoint, reason in disables:
            self.store.deliveries.disable(endpoint.id, reason)
            self.store.endpoints.invalidate()
            log.warning(
                "webhook endpoint disabled",
                extra={"endpoint": endpoint.id, "account": endpoint.account_id, "reason": reason},
            )
        return [f.next_at for f in finished if f.next_at is not None]
