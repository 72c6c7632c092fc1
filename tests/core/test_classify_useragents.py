"""User agents: the family table, the plain-browser fast path, the bot patterns, bad input."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.classify_data import default_data
from mailbeacon.core.classify import BotPatterns, Classifier
from mailbeacon.core.classify.literals import LiteralIndex
from mailbeacon.core.classify.useragents import UserAgents
from mailbeacon.core.events import Classification, RequestFacts

CLASSIFIER = Classifier(default_data())
USER_AGENTS = UserAgents(default_data().bots)


def test_literal_index_finds_overlapping_literals() -> None:
    index = LiteralIndex(["bot", "googlebot", "goo", "ogle"])
    assert sorted(index.find("x googlebot y")) == ["bot", "goo", "googlebot", "ogle"]


def test_literal_index_of_nothing_finds_nothing() -> None:
    assert list(LiteralIndex([]).find("anything")) == []


def test_bot_patterns_need_the_pattern_not_only_the_anchor() -> None:
    bots = BotPatterns([("bot", r"^SomeBot/\d")])
    assert (bots.matches("SomeBot/2", "somebot/2"), bots.matches("xSomeBot/2", "xsomebot/2")) == (True, False)


def test_bot_patterns_skip_malformed_lines() -> None:
    assert len(BotPatterns.from_text("# c\nbot\tBot(\nno-tab\nabc\tabc\n")) == 1


def test_shipped_bot_patterns_are_loaded() -> None:
    assert len(default_data().bots) > 1000


def _crawler_instances() -> list[str]:
    # The examples crawler-user-agents ships with each pattern, when the package is installed.
    try:
        source = resources.files("crawleruseragents") / "crawler-user-agents.json"
    except ModuleNotFoundError:
        return []
    return [
        ua for entry in json.loads(source.read_text(encoding="utf-8")) for ua in entry.get("instances", [])
    ]


def test_every_crawler_example_is_a_machine_on_a_link() -> None:
    instances = _crawler_instances()
    if not instances:
        pytest.skip("crawler-user-agents is not installed (it is only needed to refresh the data)")
    facts = [RequestFacts("click", "GET", 9e9, ua, sent_at=0.0) for ua in instances]
    humans = [f.user_agent for f in facts if CLASSIFIER.classify(f).classification is Classification.HUMAN]
    assert len(humans) / len(instances) < 0.02, humans[:20]


@pytest.mark.parametrize(
    "ua",
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
        ),
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 SomeApp/1.0"
        ),
    ],
)
def test_browsers_are_not_bots(ua: str) -> None:
    info = USER_AGENTS.read_uncached(ua)
    assert (info.family, info.bot) == (None, False)


def test_chrome_major_is_read() -> None:
    ua = (
        "Mozilla/5.0 (Windows NT 6.1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/57.0.2987.133 Safari/537.36"
    )
    assert USER_AGENTS.read(ua).chrome_major == 57


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        (None, "missing_user_agent"),
        ("", "missing_user_agent"),
        ("   ", "missing_user_agent"),
        ("x" * 100_000, "oversized_user_agent"),
        ("Mozilla/5.0\x00\x01\x02", "malformed_user_agent"),
        ("Mozilla/5.0 \x85\x9f", "malformed_user_agent"),
    ],
)
def test_bad_user_agents_are_machines(ua: str | None, reason: str) -> None:
    verdict = CLASSIFIER.classify(RequestFacts("open", "GET", 9e9, ua, sent_at=0.0))
    assert (verdict.classification, verdict.reasons) == (Classification.MACHINE, (reason,))


def test_the_memo_stays_bounded() -> None:
    small = UserAgents(default_data().bots, memo_size=4)
    for n in range(10):
        small.read(f"agent/{n}")
    assert len(small._memo) <= 4


texts = st.text(st.characters(codec="latin-1"), max_size=300) | st.binary(max_size=300).map(
    lambda b: b.decode("latin-1")
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["open", "click", "unsubscribe", "", "weird"]),
    method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "", "get", "\x00"]),
    ua=st.none() | texts,
    ip=st.none() | texts | st.ip_addresses().map(str),
    headers=st.dictionaries(st.sampled_from(["sec-purpose", "purpose", "referer", "cookie", "x-moz"]), texts),
    at=st.floats(allow_nan=True, allow_infinity=True),
    sent=st.none() | st.floats(allow_nan=True, allow_infinity=True),
    link=st.none() | st.integers(),
)
def test_any_hit_classifies_without_raising(
    kind: str,
    method: str,
    ua: str | None,
    ip: str | None,
    headers: dict[str, str],
    at: float,
    sent: float | None,
    link: int | None,
) -> None:
    facts = RequestFacts(kind, method, at, ua, ip, headers, sent_at=sent, link=link)
    verdict = CLASSIFIER.classify(facts)
    assert verdict.classification in set(Classification)
    assert all(isinstance(r, str) and r for r in verdict.reasons)
    assert len(CLASSIFIER.revise([facts, facts])) == 2
