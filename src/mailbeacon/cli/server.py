"""``mailbeacon serve``, ``worker``, ``db upgrade``, ``apikey``, ``stats``: running the server."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import click

from mailbeacon.cli._common import one_line_errors
from mailbeacon.config import Settings

__all__ = ["SERVER_COMMANDS", "serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the tracking server (SQLite in ./data unless MAILBEACON_DATABASE_URL says otherwise)."""
    # Only what starting needs is imported here; the ingester process migrates and recovers
    # (store.ingest.run_process), the HTTP process builds the app.
    from mailbeacon.server.runtime import EXTERNAL_INGESTER, load_keys

    with one_line_errors():
        settings = Settings.from_env()
        load_keys(settings)  # generate the key file once, before any worker starts
    stop, process, recovered = _start_ingester()
    if recovered:
        click.echo(
            f"mailbeacon: {recovered} hits from the hit log of an earlier run are now in the database",
            err=True,
        )
    os.environ[EXTERNAL_INGESTER] = "1"
    click.echo(f"mailbeacon listening on http://{host}:{port} ({_where(settings)})", err=True)
    try:
        _serve_http(host, port, workers)
    finally:
        stop.set()  # the workers have stopped and closed their hit logs: a last drain, then it exits
        process.join(timeout=120)


def _serve_http(host: str, port: int, workers: int) -> None:
    """uvicorn with mailbeacon's protocol (``server.fastpath``), in this process for one worker.

    uvicorn was chosen by measurement: with the tracking path answered in its protocol,
    a hit costs about a third of the CPU it cost under Granian's ASGI (docs/server.md).
    """
    import signal

    import uvicorn

    # uvicorn ends a signalled run by raising the signal again under the handler it found;
    # this one lets `serve` go on to the ingester's last drain instead of dying there.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped_by_signal)
    uvicorn.run(
        "mailbeacon.server.runtime:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="mailbeacon.server.fastpath:TrackingProtocol",
        loop="auto",  # uvloop where it is installed
        ws="none",
        lifespan="on",
        interface="asgi3",
        proxy_headers=False,  # MAILBEACON_TRUSTED_PROXIES decides whom to believe
        server_header=False,
        access_log=False,
        log_config=None,  # mailbeacon's JSON logs (server.runtime.configure_logging)
        log_level="warning",
        backlog=2048,
        timeout_graceful_shutdown=30,
    )


def _stopped_by_signal(_signum: int, _frame: Any) -> None:
    return None


def _start_ingester() -> tuple[Any, Any, int]:
    """Fork the process that migrates, recovers, then moves hits into the database; wait for it."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # before uvicorn starts: no threads to copy yet
    stop = context.Event()
    ours, theirs = context.Pipe(duplex=False)
    process = context.Process(
        target=_ingester_main, args=(os.getpid(), stop, theirs), name="mailbeacon-ingester"
    )
    process.start()
    theirs.close()
    try:
        kind, value = ours.recv()  # as long as migrations and recovery take
    except EOFError:
        process.join(timeout=5)
        raise click.ClickException(
            f"the ingester process exited while starting (status {process.exitcode}); see the log above"
        ) from None
    finally:
        ours.close()
    if kind != "ready":
        process.join(timeout=5)
        raise click.ClickException(str(value))
    return stop, process, int(value)


def _ingester_main(parent: int, stop: Any, ready: Any) -> None:
    from mailbeacon.store.ingest import run_process  # in the child: the supervisor never imports the store

    run_process(parent, stop, ready)


def _where(settings: Settings) -> str:
    url = settings.resolved_database_url
    return "SQLite " + url.removeprefix("sqlite:///") if url.startswith("sqlite") else url.split("@")[-1]


@click.command()
def worker() -> None:
    """Deliver webhooks from the outbox (besides, or instead of, the workers inside `serve`)."""
    import asyncio

    from mailbeacon.server.runtime import configure_logging, open_store
    from mailbeacon.webhooks.worker import DeliveryWorker

    with one_line_errors():
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        store = open_store(settings)
        store.upgrade()
    delivery = DeliveryWorker.from_settings(store, settings, db_on_loop=True)  # the process does nothing else
    click.echo(f"mailbeacon worker delivering webhooks ({_where(settings)})", err=True)
    try:
        asyncio.run(delivery.run())
    except KeyboardInterrupt:
        pass
    finally:
        store.engine.dispose()


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations (the server also does this when it starts)."""
    from mailbeacon.server.runtime import open_store

    with one_line_errors():
        store = open_store(Settings.from_env())
        store.upgrade()
        store.engine.dispose()
    click.echo("database schema is current")


@click.group()
def apikey() -> None:
    """API keys of sender accounts (stored hashed; a key is shown once)."""


def _store() -> Any:
    from mailbeacon.server.runtime import open_store

    store = open_store(Settings.from_env())
    store.upgrade()
    return store


@apikey.command("create")
@click.argument("name")
@click.option("--key-name", default="default", show_default=True, help="A label for this key.")
def apikey_create(name: str, key_name: str) -> None:
    """Create a key for the sender account NAME (created if new); prints the key once."""
    with one_line_errors():
        store = _store()
        account = store.accounts.ensure(name)
        key, _info = store.accounts.create_api_key(account.id, key_name)
        store.engine.dispose()
    click.echo(key)
    click.echo(
        f"account {account.name!r} (id {account.id}); store this key now, it is not shown again", err=True
    )


@apikey.command("list")
def apikey_list() -> None:
    """Keys and their accounts (never the keys themselves)."""
    with one_line_errors():
        store = _store()
        for account, info in store.accounts.list_api_keys():
            state = "revoked" if info.revoked_at else "active"
            click.echo(f"{info.id}  {info.hint}…  {state:7}  {account.name}  {info.name}")
        store.engine.dispose()


@apikey.command("revoke")
@click.argument("key_id")
def apikey_revoke(key_id: str) -> None:
    """Revoke the key with id KEY_ID (from `apikey list`)."""
    with one_line_errors():
        store = _store()
        revoked = store.accounts.revoke_api_key(key_id)
        store.engine.dispose()
    if not revoked:
        raise click.ClickException(f"no active key with id {key_id!r}; see `mailbeacon apikey list`")
    click.echo(f"revoked {key_id}")


@click.command()
@click.option("--account", "account_name", default="default", show_default=True, help="Sender account name.")
@click.option("--campaign", help="Only this campaign.")
@click.option("--tag", help="Only messages with this tag.")
@click.option("--by-tag", is_flag=True, help="Group by tag instead of campaign.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the same document as GET /api/v1/stats).")
def stats(account_name: str, campaign: str | None, tag: str | None, by_tag: bool, as_json: bool) -> None:
    """Sent, delivered, opens and clicks per campaign, split into human, machine and unknown."""
    from mailbeacon.store import StatsFilter

    with one_line_errors():
        store = _store()
        account = store.accounts.get_by_name(account_name)
        if account is None:
            raise click.ClickException(f"no account named {account_name!r}; see `mailbeacon apikey list`")
        where = StatsFilter(campaign=campaign, tag=tag, group_by="tag" if by_tag else "campaign")
        result = store.stats.stats(account.id, where)
        store.engine.dispose()
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_stats(result)


def _print_stats(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    key = result["group_by"]
    table = Table(title=f"mailbeacon stats by {key} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    columns = (key, "sent", "delivered", "opened by a person", "open rate", "opens", "unique opens")
    for column in (*columns, "clicks", "unique clicks"):
        table.add_column(column, justify="left" if column == key else "right")
    rows = [*((group[key] or "(none)", group) for group in result["groups"]), ("total", result["totals"])]
    for name, group in rows:
        table.add_row(
            name,
            str(group["sent"]),
            str(group["delivered"]),
            str(group["opened_by_person"]),
            "-" if group["open_rate"] is None else f"{group['open_rate']:.1%}",
            _split(group["opens"]["total"]),
            _split(group["opens"]["unique"]),
            _split(group["clicks"]["total"]),
            _split(group["clicks"]["unique"]),
        )
    Console().print(table)
    Console().print("counts are all (human / machine / unknown); the open rate counts people only")


def _split(counts: dict[str, int]) -> str:
    return f"{counts['all']} ({counts['human']}/{counts['machine']}/{counts['unknown']})"


@click.command()
@click.option("--account", "account_name", help="Only this sender account (default: every account).")
@click.option("--message", "message_id", help="Only this message (needs --account unless it is unique).")
def reclassify(account_name: str | None, message_id: str | None) -> None:
    """Rerun the classifier over stored opens and clicks, then their messages' status.

    Use it after changing MAILBEACON_CLASSIFY_* settings or upgrading the rules.
    """
    from mailbeacon.classify_data import classifier_for
    from mailbeacon.store.revision import stored_messages

    with one_line_errors():
        store = _store()
        account_id = None
        if account_name is not None:
            account = store.accounts.get_by_name(account_name)
            if account is None:
                raise click.ClickException(f"no account named {account_name!r}; see `mailbeacon apikey list`")
            account_id = account.id
        store.reviser.classifier = classifier_for(Settings.from_env())
        keys = stored_messages(store.engine, account_id, message_id)
        if message_id is not None and not keys:
            raise click.ClickException(f"no opens or clicks stored for message {message_id!r}")
        changed = sum(store.reviser.revise_message(account, message) for account, message in keys)
        store.engine.dispose()
    click.echo(f"reclassified {len(keys)} messages; {changed} events changed")


SERVER_COMMANDS = (serve, worker, db, apikey, stats, reclassify)
