"""What a user agent says about who fetched: a named family, a known bot, or a plain browser.

The user agent settles the self-identifying cases only (machine-traffic.md §1.1):
security gateways send ordinary, stale Chrome strings, so for those the network
and the timing decide (``rules.py``). Lookups, in order:

1. ``FAMILIES``, a table of named families whose treatment differs by hit kind
   (GoogleImageProxy is a person's open, but a proxy never clicks). The first
   row that matches wins, so the more specific row comes first.
2. A well-formed browser string (only known browser products, no URL, no
   "compatible;") is not a bot: this skips the long list for most human hits.
3. The bot patterns of crawler-user-agents (package data, see
   ``BotPatterns``), found through their anchors in one search.

Bad input never raises: a missing, oversized or control-character user agent
is itself a machine signal (warmbly abuse.rs: no real client sends none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from mailbeacon.core.classify.literals import LiteralIndex

__all__ = [
    "FAMILIES",
    "BotPatterns",
    "Family",
    "Signal",
    "UserAgentInfo",
    "UserAgents",
]

# Real user agents are under 512 characters; the server keeps 2,048 of a header.
# Past this many characters the string is a machine signal and only its head is read.
MAX_USER_AGENT: Final = 1024


class Signal(Enum):
    """What one piece of evidence says, before the rules weigh it."""

    MACHINE = "machine"  # decides: a machine, unless a rule above it decided first
    HUMAN = "human"  # decides: a person, unless a machine signal above it decided first
    UNKNOWN = "unknown"  # decides: cannot tell (an operator's choice, e.g. Gmail's proxy)
    WEAK = "weak"  # a hint of a machine; two hints make a machine, one makes "unknown"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Family:
    """A named client family: how to read it on an open and on a click."""

    reason: str
    needles: tuple[str, ...]  # lower-case substrings; any one identifies the family
    on_open: Signal
    on_click: Signal
    click_reason: str | None = None  # when a click means something else (Office pre-flight)


M, H, N = Signal.MACHINE, Signal.HUMAN, Signal.NONE

# Self-identifying HTTP client libraries (machine-traffic.md §3 "Generic clients").
_HTTP_CLIENTS: Final = (
    "curl/", "python-requests", "python-urllib", "aiohttp", "python-httpx", "go-http-client", "okhttp",
    "axios/", "node-fetch", "apache-httpclient", "ahc/", "java/", "jetty", "libwww-perl", "wget/",
    "lua-resty-http", "guzzlehttp", "httpie/",
)  # fmt: skip

FAMILIES: Final[tuple[Family, ...]] = (
    # Gmail's link scanners: mssola/user_agent#71; Google "special-case crawlers" (Google-Safety).
    Family("scanner:google", ("gmail-content-sampling", "google-safety"), M, M),
    # Gmail prefetch while the recipient has a session: GMass "false opens", mautic PR#10245,
    # keila PR#164 (machine-traffic.md §3 Gmail). Only this exact Chrome/Edge hybrid.
    Family("gmail_prefetch", ("chrome/42.0.2311.135 safari/537.36 edge/12.246",), M, M),
    # Gateways that name themselves: Braze docs / KNOWN_BOT_AGENTS (Barracuda Sentinel);
    # warmbly abuse.rs scanner markers (urldefense, safelinks, mimecast, proofpoint, trendmicro).
    Family("scanner:barracuda", ("barracuda",), M, M),
    Family("scanner:proofpoint", ("proofpoint", "urldefense"), M, M),
    Family("scanner:mimecast", ("mimecast",), M, M),
    Family("scanner:microsoft", ("safelinks",), M, M),
    Family("scanner:trendmicro", ("trendmicro",), M, M),
    # Link unfurlers fire when a link is pasted or forwarded into chat (machine-traffic.md §3).
    # iMessage first: its string also names Facebook and Twitter (arcjet/well-known-bots#36).
    Family("link_unfurler:imessage", ("facebot twitterbot",), M, M),
    Family("link_unfurler:slack", ("slackbot", "slack-imgproxy"), M, M),
    Family("link_unfurler:discord", ("discordbot",), M, M),
    Family("link_unfurler:teams", ("skypeuripreview",), M, M),
    Family("link_unfurler:microsoft", ("microsoftpreview", "bingpreview"), M, M),
    Family("link_unfurler:telegram", ("telegrambot",), M, M),
    Family("link_unfurler:whatsapp", ("whatsapp",), M, M),
    Family("link_unfurler:facebook", ("facebookexternalhit",), M, M),
    Family("link_unfurler:twitter", ("twitterbot",), M, M),
    Family("link_unfurler:linkedin", ("linkedinbot",), M, M),
    Family("link_unfurler:yahoo", ("yahoo link preview",), M, M),
    Family("link_unfurler:snap", ("snap url preview",), M, M),
    Family("link_unfurler:chatwork", ("chatwork",), M, M),
    Family("link_unfurler:bluesky", ("bluesky cardyb",), M, M),
    # Microsoft Office pre-flight on a link: human-triggered, but not the browser visit that
    # follows (elifesciences/builder#333, jgorset/django-respite#44).
    Family("office_preflight", ("microsoft office protocol discovery", "microsoft office existence"), M, M),
    # Self-identifying HTTP clients and headless browsers (machine-traffic.md §3 "Generic clients").
    Family("http_client", _HTTP_CLIENTS, M, M),
    Family("headless_browser", ("headlesschrome", "phantomjs", "slimerjs"), M, M),
    # OS daemons that fetch on their own (iOS dataaccessd, Android Dalvik): machine-traffic.md §3.
    Family("os_fetcher", ("dataaccessd", "dalvik/"), M, M),
    # Display-time image proxies stand for a person opening the message (machine-traffic.md §1.2:
    # SendGrid, WURFL, Mautic#16069, warmbly). A proxy never clicks.
    Family("mail_proxy:gmail", ("googleimageproxy",), H, M),
    Family("mail_proxy:yahoo", ("yahoomailproxy",), H, M),  # uap-core PR#333
    Family("mail_proxy:rambler", ("ramblermail",), H, M),
    Family("mail_proxy:seznam", ("seznamemailproxy",), H, M),
    Family("mail_proxy:ukr_net", ("mail.ukr.net proxy",), H, M),
    Family("mail_proxy:shortwave", ("shortwave image fetcher",), H, M),
    # Outlook desktop and mobile fetch images from the reader's machine once images are allowed;
    # the same string on a link is Office's pre-flight (machine-traffic.md §3 Microsoft).
    Family(
        "mail_client:outlook",
        ("microsoft outlook", "msoffice", "ms-office", "macoutlook", "outlook-ios", "outlook-android"),
        H,
        M,
        click_reason="office_preflight",
    ),
    Family("mail_client:thunderbird", ("thunderbird/",), H, N),
    Family("mail_client:other", ("airmail", "postbox/", "emclient", "em client", "mailbird"), H, N),
)

# Exact strings. Apple MPP sends exactly ``Mozilla/5.0`` (uap-core#509, Mailgun docs,
# ClickDimensions); on a link the same bare string is just a machine with no name.
_EXACT: Final = {
    "mozilla/5.0": Family("apple_mpp", (), M, M, click_reason="bare_user_agent"),
}
# Apple Mail with MPP off, macOS WKWebView and one MPP fingerprint share this string
# (uap-core#528, matomo device-detector#7970): alone it decides nothing (warmbly PR#569).
_BARE_WEBKIT: Final = re.compile(
    r"mozilla/5\.0 \([^()]*\) applewebkit/[\d.]+ \(khtml, like gecko\)(?: mobile/\w+)?"
)
# A well-formed browser: known products only, parenthesised platform comments without a
# URL, an address or "compatible;" (how bots embed themselves in browser strings).
_BROWSER_PRODUCTS: Final = (
    "applewebkit|chrome|chromium|safari|version|mobile|firefox|gecko|edg|edga|edgios|crios|fxios"
    "|opr|opt|samsungbrowser|yabrowser|vivaldi|brave|duckduckgo|ddg|gsa|ucbrowser|miuibrowser"
    "|huaweibrowser|thunderbird|trident|webview|mobile safari"
)
_COMMENT: Final = r"\((?![^()]*(?:compatible;|https?:|www\.|@|\+))[^()]*\)"
_CLEAN_BROWSER: Final = re.compile(
    rf"mozilla/5\.0 {_COMMENT}(?: (?:{_BROWSER_PRODUCTS})(?:/[\w.]+)?(?: {_COMMENT})?)*"
)
_CHROME_MAJOR: Final = re.compile(r"chrome/(\d{1,4})\.")


class BotPatterns:
    """crawler-user-agents' patterns, each behind an anchor literal (see the refresh script).

    Built from the text of ``mailbeacon/data/bot_patterns.txt`` (lines ``anchor<TAB>pattern``),
    which the caller reads; a pattern is compiled the first time its anchor is seen.
    """

    __slots__ = ("_by_anchor", "_compiled", "_index", "_unanchored")

    def __init__(self, rows: Iterable[tuple[str, str]]) -> None:
        self._by_anchor: dict[str, list[str]] = {}
        unanchored: list[str] = []
        for anchor, pattern in rows:
            if anchor:
                self._by_anchor.setdefault(anchor.lower(), []).append(pattern)
            else:
                unanchored.append(pattern)
        self._index = LiteralIndex(self._by_anchor)
        self._unanchored = re.compile("|".join(unanchored)) if unanchored else None
        self._compiled: dict[str, re.Pattern[str]] = {}

    @classmethod
    def from_text(cls, text: str) -> BotPatterns:
        """Parse the package data file; comment and malformed lines are skipped."""
        rows = (line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#"))
        return cls((row[0], row[1]) for row in rows if len(row) == 2 and _compiles(row[1]))

    def __len__(self) -> int:
        return sum(map(len, self._by_anchor.values())) + (1 if self._unanchored else 0)

    def matches(self, user_agent: str, lowered: str) -> bool:
        """Whether any pattern matches (patterns are case-sensitive, as their authors wrote them)."""
        if self._unanchored is not None and self._unanchored.search(user_agent):
            return True
        for anchor in self._index.find(lowered):
            if any(self._regex(p).search(user_agent) for p in self._by_anchor[anchor]):
                return True
        return False

    def _regex(self, pattern: str) -> re.Pattern[str]:
        regex = self._compiled.get(pattern)
        if regex is None:
            regex = self._compiled[pattern] = re.compile(pattern)
        return regex


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


class UserAgentInfo(NamedTuple):
    """Everything the rules read from one user agent string."""

    family: Family | None = None  # a named family, or a synthetic one for missing/bad strings
    bot: bool = False  # matched a crawler-user-agents pattern
    bare_webkit: bool = False
    chrome_major: int | None = None


_MISSING: Final = UserAgentInfo(Family("missing_user_agent", (), M, M))
_OVERSIZED: Final = Family("oversized_user_agent", (), M, M)
_MALFORMED: Final = Family("malformed_user_agent", (), M, M)


class UserAgents:
    """Reads user agents with the family table and the bot patterns; remembers recent answers.

    Real traffic repeats a few thousand strings, so a bounded memo turns most lookups
    into one dict hit. It is cleared when full: simpler than LRU and just as bounded.
    """

    __slots__ = ("_bots", "_exact", "_families", "_index", "_memo", "_memo_size")

    def __init__(
        self, bots: BotPatterns, families: tuple[Family, ...] = FAMILIES, memo_size: int = 4096
    ) -> None:
        self._bots = bots
        self._families = {needle: (rank, f) for rank, f in enumerate(families) for needle in f.needles}
        self._index = LiteralIndex(self._families)
        self._exact = _EXACT
        self._memo: dict[str, UserAgentInfo] = {}
        self._memo_size = memo_size

    def read(self, user_agent: str | None) -> UserAgentInfo:
        if not user_agent or not user_agent.strip():
            return _MISSING
        info = self._memo.get(user_agent)
        if info is None:
            info = self._read(user_agent)
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            self._memo[user_agent] = info
        return info

    def read_uncached(self, user_agent: str | None) -> UserAgentInfo:
        """As ``read``, without the memo (benchmarks measure the cold path with it)."""
        return self._read(user_agent) if user_agent and user_agent.strip() else _MISSING

    def _read(self, user_agent: str) -> UserAgentInfo:
        if len(user_agent) > MAX_USER_AGENT:
            return UserAgentInfo(_OVERSIZED)
        if not user_agent.isprintable():  # control characters: C0, DEL, C1 (binary read as latin-1)
            return UserAgentInfo(_MALFORMED)
        lowered = user_agent.strip().lower()
        family = self._exact.get(lowered) or self._family(lowered)
        chrome = _CHROME_MAJOR.search(lowered)
        chrome_major = int(chrome.group(1)) if chrome else None
        if family is not None:
            return UserAgentInfo(family, chrome_major=chrome_major)
        bare = _BARE_WEBKIT.fullmatch(lowered) is not None
        bot = not bare and not _CLEAN_BROWSER.fullmatch(lowered) and self._bots.matches(user_agent, lowered)
        return UserAgentInfo(None, bot, bare, chrome_major)

    def _family(self, lowered: str) -> Family | None:
        found = [self._families[needle] for needle in self._index.find(lowered)]
        return min(found, key=lambda ranked: ranked[0])[1] if found else None
