"""What the endpoints share: the store, the keys, and small caches in front of the store."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mailbeacon.server.ingestion import Ingestion
from mailbeacon.store import Store
from mailbeacon.tracker import GmailClipWarning, Tracker

__all__ = ["ServerContext", "Tracked"]

log = logging.getLogger("mailbeacon.server")

# How long a verified API key or the set of account ids is trusted without
# asking the store again: revoking a key takes effect within this time.
_CACHE_SECONDS = 10.0
# How long an account id found missing is not looked up again (tokens are signed: a miss
# is an account created since the last refresh, or one that was deleted).
_MISS_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Tracked:
    html: str | None
    text: str | None
    open_url: str
    unsubscribe_url: str
    links: list[tuple[int, str]]  # (index carried in the click token, destination)
    warnings: list[str]


@dataclass
class ServerContext:
    store: Store
    ingestion: Ingestion
    keys: object  # KeyRing; typed loosely to keep this module free of core imports it does not use
    base_url: str
    default_account: str
    encrypt: bool = False
    ttl: timedelta | None = None
    webhook_allow_private: bool = False
    stream_heartbeat: float = 15.0
    hub: Any = None  # server.stream.StreamHub, once the lifespan started it
    # Called after test or replay deliveries were queued: wakes the delivery worker, in this
    # process or (under `serve`) in the ingester's (store.wakeup); until the lifespan sets it, a no-op.
    deliveries_queued: Callable[[], None] = lambda: None
    _accounts: set[str] = field(default_factory=set)
    _accounts_at: float = 0.0
    _keys_seen: dict[str, tuple[str, float]] = field(default_factory=dict)
    _misses: dict[str, float] = field(default_factory=dict)

    def tracker(self, account: str) -> Tracker:
        from mailbeacon.core.keys import KeyRing

        assert isinstance(self.keys, KeyRing)
        # Tokens of the default account carry no account id: shorter links, and
        # links minted offline without an account land there too.
        owner = None if account == self.default_account else account
        return Tracker(self.base_url, self.keys, encrypt=self.encrypt, ttl=self.ttl, account=owner)

    def track(
        self,
        account: str,
        message_id: str,
        recipient: str,
        html: str | None,
        text: str | None,
        *,
        honeypot: bool = False,
    ) -> Tracked:
        tracker = self.tracker(account)
        common: dict[str, Any] = {"message_id": message_id, "recipient": recipient}
        notes: list[str] = []
        links: list[tuple[int, str]] = []
        tracked_html = None
        if html is not None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", GmailClipWarning)
                result = tracker.rewrite_html(html, honeypot=honeypot, **common)
                if result.clipped:
                    notes.append(f"tracked HTML is {result.size:,} bytes; Gmail clips messages over ~102 KB")
            notes += [str(w.message) for w in caught]
            tracked_html = result.html
            links = [(link.index, link.url) for link in result.links]
        tracked_text = None
        if text is not None:
            from mailbeacon.core.errors import InvalidDestination
            from mailbeacon.core.text import rewrite_text_links

            start = links[-1][0] + 1 if links else 0

            def mint(url: str, index: int) -> str | None:
                try:
                    tracked = tracker.click_url(url, link=start + index, **common)
                except InvalidDestination:
                    return None
                links.append((start + index, url))
                return tracked

            tracked_text = rewrite_text_links(text, mint)[0]
        return Tracked(
            html=tracked_html,
            text=tracked_text,
            open_url=tracker.open_url(**common),
            unsubscribe_url=tracker.unsubscribe_url(**common),
            links=links,
            warnings=notes,
        )

    def known_accounts(self) -> set[str]:
        """Account ids, refreshed from the store at most every few seconds (the hot path calls this)."""
        now = time.monotonic()
        if now - self._accounts_at > _CACHE_SECONDS:
            self._accounts_at = now
            try:
                self._accounts = self.store.accounts.account_ids()
            except Exception:  # keep the last known set rather than fail a tracking hit
                log.exception("could not refresh the account ids; keeping the last known set")
        return self._accounts

    def is_known_account(self, account: str) -> bool:
        """Whether ``account`` exists: the cached set, else one lookup (at most once a second per id).

        A verified token names an account created moments ago (``mailbeacon apikey create`` in
        another process) more often than a forged one: waiting for the next refresh of the set
        would drop that account's first hits as unattributed.
        """
        if account in self.known_accounts():
            return True
        now = time.monotonic()
        if now - self._misses.get(account, float("-inf")) < _MISS_SECONDS:
            return False
        try:
            found = self.store.accounts.get(account) is not None
        except Exception:
            log.exception("could not look up account %s; the hit stays unattributed", account)
            return False
        if found:
            self._accounts.add(account)
            self._misses.pop(account, None)
        else:
            if len(self._misses) > 10_000:
                self._misses.clear()
            self._misses[account] = now
        return found

    def authenticate(self, key: str) -> str | None:
        """The account of a bearer key (cached briefly; runs in a worker thread)."""
        now = time.monotonic()
        seen = self._keys_seen.get(key)
        if seen is not None and now - seen[1] < _CACHE_SECONDS:
            return seen[0]
        account = self.store.accounts.authenticate(key)
        if account is None:
            self._keys_seen.pop(key, None)
            return None
        if len(self._keys_seen) > 10_000:
            self._keys_seen.clear()
        self._keys_seen[key] = (account, now)
        self._accounts.add(account)
        return account
