"""``create_app``: the whole server as one ASGI application, wired explicitly.

    app = create_app(settings, store=Store(url), keys=ring)

Paths under ``/o/``, ``/c/`` and ``/u/`` go straight to the tracking
endpoints (plain ASGI, the hot path); everything else goes to the FastAPI
application (REST API, ``/openapi.json``, ``/docs``, ``/healthz``,
``/metrics``). The ASGI lifespan applies migrations, starts the recorder
and, on shutdown, commits every queued hit before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

from mailbeacon.config import Settings
from mailbeacon.core.keys import KeyRing
from mailbeacon.server import api, api_stream, api_webhooks, problems
from mailbeacon.server.context import ServerContext
from mailbeacon.server.ingestion import Ingestion
from mailbeacon.server.limits import BodyLimit
from mailbeacon.server.metrics import render_metrics
from mailbeacon.server.tracking import Classify, TrackingEndpoints
from mailbeacon.store import Store

__all__ = ["MailbeaconApp", "create_app"]

log = logging.getLogger("mailbeacon.server")
DEFAULT_ACCOUNT = "default"
_TRACKING = frozenset({"/o/", "/c/", "/u/"})


class MailbeaconApp:
    """The ASGI entry point: dispatch by path prefix, own the lifespan."""

    def __init__(
        self,
        api_app: Any,
        tracking: TrackingEndpoints,
        context: ServerContext,
        settings: Settings,
        *,
        end_streams_on_signal: bool = False,
    ) -> None:
        self.api = api_app
        self.tracking = tracking
        self.context = context
        self.settings = settings
        self.end_streams_on_signal = end_streams_on_signal
        self.worker: Any = None
        self.wake_receiver: Any = None  # store.wakeup, under `serve`
        self.wake_sender: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["path"][:3] in _TRACKING:
                await self.tracking(scope, receive, send)
            else:
                await self.api(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.context.store.start()
                    self.context.ingestion.start()
                    await self._start_delivery()
                except Exception as exc:
                    log.exception("start failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                log.info("ready", extra={"database": self.context.store.dialect})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                queued = self.context.store.recorder.queued + self.context.ingestion.hitlog.queued
                await self._stop_delivery()
                self.context.ingestion.stop()
                self.context.store.close()
                log.info("stopped", extra={"flushed": queued})
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_delivery(self) -> None:
        """The stream hub, and the webhook worker unless MAILBEACON_WEBHOOK_WORKER=false or
        another process ingests (and so delivers)."""
        from mailbeacon.server.stream import StreamHub

        recorder = self.context.store.recorder
        hub = StreamHub(self.context.store.engine)
        await hub.start()
        self.context.hub = hub
        recorder.listeners.append(hub.notify)
        if self.end_streams_on_signal:
            _end_streams_on_signals(hub)
        if self.context.ingestion.external:
            self._wake_across_processes(hub)
        # Under `serve`, the ingester process delivers (store.ingest.run_process).
        if self.settings.webhook_worker and not self.context.ingestion.external:
            from mailbeacon.webhooks.worker import DeliveryWorker

            self.worker = DeliveryWorker.from_settings(self.context.store, self.settings)
            self.worker.start()
            recorder.listeners.append(self.worker.wake)
            self.context.deliveries_queued = self.worker.wake

    def _wake_across_processes(self, hub: Any) -> None:
        """Under `serve`: the ingester's commits wake this process's stream hub at once (not at
        its next 50 ms poll), and this process's commits and queued test or replay deliveries
        wake the ingester's delivery worker (``store.wakeup``)."""
        from mailbeacon.store.wakeup import HTTP, INGESTER, WakeReceiver, WakeSender

        self.wake_receiver = WakeReceiver.bind(self.settings.data_dir, HTTP)
        if self.wake_receiver is not None:
            # With no stream open there is nothing to hurry: the hub's poll keeps its position.
            self.wake_receiver.attach(asyncio.get_running_loop(), lambda: hub.streams and hub.notify())
        wake_ingester = WakeSender(self.settings.data_dir, INGESTER)
        self.wake_sender = wake_ingester
        self.context.store.recorder.listeners.append(wake_ingester)
        self.context.deliveries_queued = wake_ingester

    async def _stop_delivery(self) -> None:
        if self.wake_receiver is not None:
            self.wake_receiver.close()
        if self.wake_sender is not None:
            self.wake_sender.close()
        if self.worker is not None:
            await self.worker.stop()
        if self.context.hub is not None:
            await self.context.hub.stop()


def _end_streams_on_signals(hub: Any) -> None:
    """On SIGTERM/SIGINT, end the open streams at once, then let the server's own handler run.

    uvicorn answers SIGTERM by waiting (up to ``timeout_graceful_shutdown``) for every
    open response before it runs the lifespan shutdown, and a stream never ends by
    itself: without this, shutdown waits for the clients to hang up. The server's handler
    is chained, not replaced: it runs right after the streams are told to end.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.close)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)


def create_app(
    settings: Settings,
    *,
    store: Store,
    keys: KeyRing,
    classify: Classify | None = None,
    external_ingester: bool = False,
    end_streams_on_signal: bool = False,
) -> MailbeaconApp:
    """The server over ``store``; the store's schema must be current (``store.upgrade()``).

    ``classify`` defaults to the shipped classifier configured by ``settings.classify``;
    the same classifier revises stored events after each commit (``store.revision``).
    Hits are appended to the hit log in ``settings.data_dir / "hits"``; with
    ``external_ingester`` (``mailbeacon serve``) another process moves them into
    the store (and revises them, and delivers webhooks, there), otherwise this app does,
    on its own event loop.
    ``end_streams_on_signal`` (``mailbeacon serve``; the lifespan must then run on the
    main thread) ends open event streams as soon as SIGTERM or SIGINT arrives.
    """
    from mailbeacon.classify_data import classifier_for

    classifier = classifier_for(settings)
    store.reviser.classifier = classifier
    default_account = store.accounts.ensure(DEFAULT_ACCOUNT).id
    ingestion = Ingestion(
        store,
        settings.data_dir / "hits",
        fsync=settings.sqlite_synchronous == "full",
        external=external_ingester,
    )
    context = ServerContext(
        store=store,
        ingestion=ingestion,
        keys=keys,
        base_url=settings.base_url,
        default_account=default_account,
        encrypt=settings.encrypt_tokens,
        ttl=settings.token_ttl,
        webhook_allow_private=settings.webhook_allow_private,
        stream_heartbeat=settings.stream_heartbeat,
    )
    tracking = TrackingEndpoints(
        keys=keys,
        recorder=ingestion.hitlog,
        default_account=default_account,
        known_account=context.is_known_account,
        privacy=settings.privacy,
        client_ip=_client_ip(settings),
        classify=classify or classifier,
    )
    fastapi_app = FastAPI(
        title="mailbeacon",
        version=_version(),
        description="What happened to a message after it left. Tracking links live under /o/, /c/ and /u/.",
        redoc_url=None,
    )
    fastapi_app.state.mailbeacon = context
    problems.install(fastapi_app)
    fastapi_app.include_router(api.router)
    fastapi_app.include_router(api_webhooks.router)
    fastapi_app.include_router(api_stream.router)
    _operations(fastapi_app, context, tracking)
    return MailbeaconApp(
        BodyLimit(fastapi_app, settings.max_body_bytes),
        tracking,
        context,
        settings,
        end_streams_on_signal=end_streams_on_signal,
    )


def _operations(app: FastAPI, context: ServerContext, tracking: TrackingEndpoints) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        try:
            context.store.ping()
        except Exception:
            log.exception("health check: the database does not answer")
            return problems.problem_response(503, "the database does not answer")
        return PlainTextResponse("ok\n")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return PlainTextResponse(
            render_metrics(context.store.recorder, tracking.counts, context.ingestion.counters),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )


def _client_ip(settings: Settings) -> Any:
    from mailbeacon.core.classify import TrustedProxies, client_ip

    if not settings.trusted_proxies:
        return None  # the TCP peer itself: no parsing on the hot path
    trusted = TrustedProxies(str(network) for network in settings.trusted_proxies)
    return lambda peer, headers: client_ip(peer, headers, trusted)


def _version() -> str:
    from mailbeacon import __version__

    return __version__
