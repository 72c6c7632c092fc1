"""The classifier's knobs and data, as values: the caller builds them (from MAILBEACON_* settings)."""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.core.classify.networks import NetworkEntry
from mailbeacon.core.classify.useragents import BotPatterns

__all__ = ["ClassifierConfig", "ClassifierData"]


@dataclass(frozen=True, slots=True)
class ClassifierConfig:
    """Windows (seconds after delivery, or after sending when no delivery is known) and switches.

    The defaults and their sources are in docs/classification.md; each field is the
    future ``MAILBEACON_CLASSIFY_*`` setting of the same name.
    """

    # Nobody opens or clicks this fast: Mautic BotRatioHelper and ValueBuilder < 2 s, Collie 1.5 s.
    instant_seconds: float = 2.0
    # A hint, not a verdict: warmbly ~60 s for opens, GMass "< 1 minute likely false".
    open_window_seconds: float = 60.0
    # Scanners click within seconds: OpenAEV PR#7471 < 10 s; warmbly uses up to 30 s.
    click_window_seconds: float = 10.0
    # Where "probable" networks (browser isolation, Exchange Online) count as machines:
    # warmbly's wider vendor window; anymail#200 saw scanner clusters 60 s to 5 min after send.
    probable_window_seconds: float = 300.0
    # Clicks on this many distinct links within this many seconds are a scanner walking the
    # message (CustomerMinds: all links, >= 3; support.arternal.com / envoke: "within 1-5 s").
    burst_seconds: float = 10.0
    burst_min_links: int = 3
    # A Chrome older than this is a hint (Defender detonates with Chrome/57..101: gophish#973,
    # #2646). No clock in the core: raise it as browsers move on (110 shipped in 2023-02).
    stale_chrome_major: int = 110
    # Count Gmail's display-time proxy as "unknown" rather than a person (Mailgun's bot=gmail).
    gmail_proxy_as_unknown: bool = False
    # The operator's own known scanners (MAILBEACON_SCANNER_NETWORKS), after the shipped list.
    extra_networks: tuple[NetworkEntry, ...] = ()
    # The sender's own UI: a Referer starting with one of these is the sender looking at the
    # message, not the recipient (CurryOnPatat/mail-php-tracking-with-gui#1).
    sender_origins: tuple[str, ...] = ()
    sender_cookies: tuple[str, ...] = ()  # cookie names of the sender app's session
    user_agent_memo: int = 4096  # distinct user agents remembered; 0 turns the memo off
    verdict_memo: int = 4096  # request fingerprints whose verdict is remembered; 0 turns it off


@dataclass(frozen=True, slots=True)
class ClassifierData:
    """The shipped data, read by the caller (``mailbeacon.classify_data``) and passed in."""

    bots: BotPatterns
    networks: tuple[NetworkEntry, ...] = ()
