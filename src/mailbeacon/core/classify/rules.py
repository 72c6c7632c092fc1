"""The per-hit rules, in the order they are weighed (machine-traffic.md §6.2).

Each rule looks at one hit and returns a ``Finding`` or None. Weighing:

1. The first rule whose finding *decides* (machine, human or unknown) sets the
   classification; rules above it outrank rules below it. So a HEAD request is
   a machine even with Gmail's proxy string, and an Outlook desktop open right
   after delivery is still a person (a mail client's own string outranks timing).
2. Otherwise *weak* findings count: two or more make a machine (Mautic's bot
   ratio takes 2 of 3 signals), one leaves the hit ``unknown``, unless it is
   one that only corroborates (``CORROBORATING``): then the hit is a person.
3. Otherwise the hit is a person: no machine signal was found.

Per-message evidence (bursts, honeypots, click before open) is added later by
``behaviour.revise``, which re-weighs hits that no rule decided.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Final, NamedTuple

from mailbeacon.core.classify.config import ClassifierConfig
from mailbeacon.core.classify.networks import NetworkMatch, Scope
from mailbeacon.core.classify.useragents import Signal, UserAgentInfo
from mailbeacon.core.events import Classification, RequestFacts, Verdict

__all__ = ["RULES", "Assessment", "Finding", "HitView", "Rule", "weigh"]


_DECIDES: Final = {
    Signal.MACHINE: Classification.MACHINE,
    Signal.HUMAN: Classification.HUMAN,
    Signal.UNKNOWN: Classification.UNKNOWN,
}


class Assessment(NamedTuple):
    """A verdict and how it was reached, so later evidence can re-weigh it."""

    verdict: Verdict
    decided: bool  # a rule decided; per-message hints cannot overturn it
    weak: tuple[str, ...] = ()


class Finding(NamedTuple):
    """What one rule found. Built once per distinct reason (``found``): the hit path
    allocates no findings and no verdicts, only looks them up."""

    signal: Signal
    reason: str
    confidence: float
    decided: Assessment | None  # the assessment when this finding decides alone


@cache
def found(signal: Signal, reason: str, confidence: float = 0.9) -> Finding:
    decision = _DECIDES.get(signal)
    decided = Assessment(Verdict(decision, (reason,), confidence), True) if decision else None
    return Finding(signal, reason, confidence, decided)


class HitView(NamedTuple):
    """A hit with what the rules read from it computed once."""

    facts: RequestFacts
    click: bool  # a click or an unsubscribe: link-following, not image loading
    ua: UserAgentInfo
    network: NetworkMatch | None
    age: float | None  # seconds since delivery (or send); None when neither is known


Rule = Callable[[HitView, ClassifierConfig], Finding | None]

_PREFETCH_HEADERS: Final = ("sec-purpose", "purpose", "x-purpose", "x-moz")
_PREFETCH_VALUES: Final = ("prefetch", "preview", "prerender")
_METHODS: Final = {"HEAD": "head_request", "OPTIONS": "options_request"}


def honeypot(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # A link hidden from people, so only automatic clickers follow it: Spotler ("100 %
    # certainty"), Kit (ConvertKit) help, mautic#9162.
    return found(Signal.MACHINE, "honeypot", 0.99) if hit.facts.honeypot else None


def method(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # HEAD and OPTIONS fetch no pixel and follow no link: Safe Links sends HEAD before
    # the GET (Django-Verify-Email PR#62); Mautic drops HEAD (PR#15844, #17263).
    reason = _METHODS.get(hit.facts.method.strip().upper())
    return found(Signal.MACHINE, reason, 0.99) if reason else None


def prefetch_header(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Browsers announce speculative loads (Sec-Purpose/Purpose; warmbly also reads
    # X-Purpose and X-Moz): Mautic isRequestTrackable(), warmbly abuse.rs.
    headers = hit.facts.headers
    for name in _PREFETCH_HEADERS:
        value = headers.get(name, "").lower()
        if value and any(word in value for word in _PREFETCH_VALUES):
            return found(Signal.MACHINE, "prefetch_header", 0.95)
    return None


def sender_own_view(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # The sender's UI rendering its own copy (helpdesk "customer viewed" right after
    # sending): CurryOnPatat/mail-php-tracking-with-gui#1; Groundhogg checks the Referer.
    referer = hit.facts.headers.get("referer", "")
    cookie = hit.facts.headers.get("cookie", "")
    own = (referer and referer.startswith(config.sender_origins)) or (
        cookie and any(f"{name}=" in cookie for name in config.sender_cookies)
    )
    return found(Signal.MACHINE, "sender_own_view", 0.99) if own else None


def user_agent_machine(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Self-identifying machines: the family table (useragents.FAMILIES, each row sourced)
    # and crawler-user-agents' patterns. A missing user agent is a machine (warmbly abuse.rs).
    family = hit.ua.family
    if family is not None:
        signal = family.on_click if hit.click else family.on_open
        if signal is Signal.MACHINE:
            reason = (family.click_reason if hit.click else None) or family.reason
            return found(Signal.MACHINE, reason, _UA_CONFIDENCE.get(reason, 0.9))
    return found(Signal.MACHINE, "bot_user_agent", 0.9) if hit.ua.bot else None


# MPP opens carry no information either way (Klaviyo: "no way to differentiate"), so the
# machine label is a statement about evidence, held with less confidence than a bot's name.
_UA_CONFIDENCE: Final = {"apple_mpp": 0.7, "missing_user_agent": 0.8, "oversized_user_agent": 0.8}


def scanner_network(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Networks that only scanners request from, per kind (networks.csv, machine-traffic.md §4).
    if hit.network is not None and _scope(hit) is Scope.MACHINE:
        return found(Signal.MACHINE, f"scanner_network:{hit.network.name}", 0.9)
    return None


def user_agent_human(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Display-time proxies stand for a person (GoogleImageProxy, YahooMailProxy), as do mail
    # clients that fetch from the reader's machine; useragents.FAMILIES has the sources.
    family = hit.ua.family
    if family is None or (family.on_click if hit.click else family.on_open) is not Signal.HUMAN:
        return None
    if family.reason == "mail_proxy:gmail" and config.gmail_proxy_as_unknown:
        return found(Signal.UNKNOWN, family.reason, 0.5)
    return found(Signal.HUMAN, family.reason, 0.8 if family.reason.startswith("mail_client") else 0.7)


def probable_network(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Isolation products and Exchange Online relay people too: a machine only close to
    # delivery (warmbly scanner-networks.txt: "probable", inside a wider window).
    if hit.network is None or _scope(hit) is not Scope.PROBABLE:
        return None
    if hit.age is not None and hit.age < config.probable_window_seconds:
        return found(Signal.MACHINE, f"scanner_network:{hit.network.name}", 0.7)
    return None


def instant(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # No person opens or clicks within ~2 s of delivery (Mautic, ValueBuilder, Collie).
    if hit.age is not None and hit.age < config.instant_seconds:
        return found(Signal.MACHINE, "within_delivery_window", 0.8)
    return None


def delivery_window(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Within a minute of delivery (10 s for clicks) is suspicious, not proof: people do open
    # mail they are waiting for (warmbly windows; GMass; jdavidbakr/mail-tracker#228).
    window = config.click_window_seconds if hit.click else config.open_window_seconds
    if hit.age is not None and hit.age < window:
        return found(Signal.WEAK, "within_delivery_window")
    return None


def bare_webkit(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Apple Mail (MPP off), WKWebView and an MPP fingerprint share the bare WebKit string
    # (uap-core#528); warmbly needed timing on top of it (PR#569), hence a hint only.
    return found(Signal.WEAK, "bare_webkit") if hit.ua.bare_webkit and not hit.click else None


def stale_browser(hit: HitView, config: ClassifierConfig) -> Finding | None:
    # Defender/Safe Links detonate with years-old Chrome builds (gophish#973 Chrome/57,
    # #2646 Chrome/101; mssola/user_agent#71 Chrome/79).
    major = hit.ua.chrome_major
    return (
        found(Signal.WEAK, "stale_browser")
        if major is not None and major < config.stale_chrome_major
        else None
    )


def _scope(hit: HitView) -> Scope:
    assert hit.network is not None
    return hit.network.clicks if hit.click else hit.network.opens


RULES: Final[tuple[Rule, ...]] = (
    honeypot,
    method,
    prefetch_header,
    sender_own_view,
    user_agent_machine,
    scanner_network,
    user_agent_human,
    probable_network,
    instant,
    delivery_window,
    bare_webkit,
    stale_browser,
)


def weigh(hit: HitView, config: ClassifierConfig, rules: tuple[Rule, ...] = RULES) -> Assessment:
    """Run the rules in order and weigh their findings (see the module docstring)."""
    weak: list[str] = []
    for rule in rules:
        finding = rule(hit, config)
        if finding is None:
            continue
        if finding.decided is None:
            weak.append(finding.reason)
        elif not weak:
            return finding.decided
        else:
            verdict = finding.decided.verdict
            return Assessment(
                Verdict(verdict.classification, (finding.reason, *weak), finding.confidence), True
            )
    return _undecided(tuple(weak))


@cache
def _undecided(weak: tuple[str, ...]) -> Assessment:
    return Assessment(from_hints(weak), False, weak)


# Hints that only corroborate: alone they are ordinary people (Apple Mail with MPP off sends
# the bare WebKit string; unpatched office PCs run old Chrome; image-blocking clients click
# without an open), next to another hint they tip the balance (warmbly PR#569;
# ValueBuilder "click before open within 30 s").
CORROBORATING: Final = frozenset({"bare_webkit", "click_before_open", "stale_browser"})


@cache
def from_hints(weak: tuple[str, ...]) -> Verdict:
    """The verdict for a hit no rule decided: two hints make a machine, one leaves it unknown."""
    if len(weak) >= 2:
        return Verdict(Classification.MACHINE, weak, 0.6)
    if weak and weak[0] not in CORROBORATING:
        return Verdict(Classification.UNKNOWN, weak, 0.5)
    return Verdict(Classification.HUMAN, ("no_machine_signal", *weak), 0.6)
