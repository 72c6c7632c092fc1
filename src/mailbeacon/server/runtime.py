"""Building the server from the environment: keys, store, logging. Used by ``mailbeacon serve``.

This is the one place (with the CLI) that reads ``MAILBEACON_*`` settings and
touches the data directory; ``create_app`` itself takes everything explicitly.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
from typing import Any

from mailbeacon.config import Settings, generate_keyring
from mailbeacon.core.errors import ConfigError, KeyConfigError
from mailbeacon.core.keys import KeyRing

__all__ = ["app_from_env", "configure_logging", "load_keys", "open_store", "tune_gc"]

_KEYS_FILE = "keys"


EXTERNAL_INGESTER = "_MAILBEACON_EXTERNAL_INGESTER"  # set by `mailbeacon serve` for its workers


def load_keys(settings: Settings) -> KeyRing:
    """``MAILBEACON_KEYS``, or a ring generated once into the data directory and reused after."""
    if settings.keys is not None:
        return settings.keys
    path = settings.data_dir / _KEYS_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        spec = generate_keyring().to_spec()
        # Created 0600 and exclusively: two processes starting at once must not write two keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(spec + "\n")
    try:
        return KeyRing.parse(path.read_text().strip())
    except KeyConfigError as exc:
        raise ConfigError(f"{path}: {exc}; fix it or delete it to generate a new key") from None


def open_store(settings: Settings) -> Any:
    from mailbeacon.store import Store

    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)


class _JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra`` fields."""

    _PLAIN = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._PLAIN})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    logger = logging.getLogger("mailbeacon")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False


def app_from_env() -> Any:
    """The ASGI application for ``mailbeacon serve`` (each server worker calls this once)."""
    from mailbeacon.server.app import create_app

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    store = open_store(settings)
    external = os.environ.get(EXTERNAL_INGESTER) == "1"
    if not external:  # under `serve`, its ingester process migrated before any worker started
        store.upgrade()
    app = create_app(
        settings,
        store=store,
        keys=load_keys(settings),
        external_ingester=external,
        end_streams_on_signal=True,  # uvicorn runs the lifespan on the worker's main thread
    )
    tune_gc()
    return app


# A hit allocates a few hundred objects that die by reference counting; with the default
# threshold (700) the cyclic collector ran every few hits and walked everything in flight,
# and its full collections walked every module, class and rule table loaded at start. That
# was ~10 % of a server worker's time under load (py-spy). Long-lived startup objects are
# frozen out of collection, and the young generation is collected 30x less often.
_GC_THRESHOLD = (20_000, 20, 20)


def tune_gc() -> None:
    """Freeze what startup built and collect the young generation less often (server processes)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLD)
