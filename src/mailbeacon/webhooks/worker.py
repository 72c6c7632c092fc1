"""The delivery worker: claims due deliveries from the outbox, signs them, posts them, retries.

It runs inside ``mailbeacon serve`` (one per server process) or alone as
``mailbeacon worker``; any number may run against one database, since
claims never overlap (``store.deliveries``). A commit in this process wakes
it at once (so a hit reaches a receiver in milliseconds); otherwise it polls.
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

from mailbeacon.store import Claimed, Store
from mailbeacon.webhooks.policy import Outcome, RetryPolicy, event_body
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
        batch: int = 200,
        resolver: Resolver | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.allow_private = allow_private
        self.poll = poll
        self.batch = batch
        self._resolver = resolver
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
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
        try:
            while True:
                try:
                    claimed = await self._claim()
                except Exception:
                    log.exception("could not claim webhook deliveries; retrying")
                    claimed = []
                for delivery in claimed:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._deliver(sender, delivery))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                if len(claimed) < self.batch:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll)
        finally:
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await sender.close()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _claim(self) -> list[Claimed]:
        # The lease outlasts the attempt's deadline (and DNS): then it is claimable again.
        return await asyncio.to_thread(self.store.deliveries.claim, self.batch, self.timeout + 30)

    async def _deliver(self, sender: Sender, claimed: Claimed) -> None:
        try:
            await self._attempt(sender, claimed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s crashed; it will be claimed again", claimed.id)

    async def _attempt(self, sender: Sender, claimed: Claimed) -> None:
        endpoint = await asyncio.to_thread(self.store.endpoints.get_any, claimed.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return  # its lease expires; a re-enabled endpoint gets it then
        body = claimed.payload
        if body is None:
            assert claimed.event_seq is not None
            found = await asyncio.to_thread(self.store.deliveries.event, claimed.event_seq)
            if found is None:
                return
            body = event_body(*found)
        started = time.time()
        headers = sign_headers(claimed.id, int(started), body, endpoint.signing_secrets(started))
        outcome = await sender.post(endpoint.url, body, headers)
        duration = time.time() - started
        next_at = await asyncio.to_thread(self._record, claimed, outcome, started, duration, endpoint)
        if (
            next_at is not None and next_at - time.time() < self.poll
        ):  # a short retry: do not wait for the poll
            asyncio.get_running_loop().call_later(max(0.0, next_at - time.time()), self.wake)

    def _record(
        self, claimed: Claimed, outcome: Outcome, at: float, duration: float, endpoint: Any
    ) -> float | None:
        deliveries = self.store.deliveries
        decision = self.policy.decide(outcome, claimed.attempts + 1, endpoint.failing_since, at)
        next_at = None if decision.next_delay is None else at + duration + decision.next_delay
        deliveries.finish(
            claimed,
            at=at,
            status_code=outcome.status_code,
            error=outcome.error,
            duration=duration,
            next_at=next_at,
            delivered=outcome.delivered,
        )
        if outcome.delivered:
            self.sent += 1
            return None
        self.failed += 1
        if decision.disable is not None:
            deliveries.disable(endpoint.id, decision.disable)
            self.store.endpoints.invalidate()
            log.warning(
                "webhook endpoint disabled",
                extra={"endpoint": endpoint.id, "account": endpoint.account_id, "reason": decision.disable},
            )
        return next_at
