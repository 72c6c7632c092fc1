"""The classifier's fingerprint memo never changes a verdict, and stays bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailbeacon.classify_data import default_data
from mailbeacon.core.classify import Classifier, ClassifierConfig
from mailbeacon.core.events import RequestFacts

CLASSIFIER = Classifier(default_data())

AGENTS = [
    None,
    "",
    "Mozilla/5.0",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/79.0.3945.88 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)",
    "Wget/1.21.4",
    "python-requests/2.31",
    "Barracuda Sentinel (EE)",
]
# Residential, Apple's MPP range, Microsoft's scanners, Google's proxy, IPv6, malformed, none.
ADDRESSES = [None, "198.51.100.7", "17.58.1.1", "40.107.0.1", "66.249.84.1", "2001:db8::1", "01.2.3.4", "x"]
HEADERS = st.dictionaries(
    st.sampled_from(["sec-purpose", "purpose", "x-moz", "referer", "cookie", "accept", "via"]),
    st.sampled_from(["prefetch", "prefetch;prerender", "https://desk.example.com/t/1", "sid=1", "*/*", ""]),
    max_size=3,
)
FACTS = st.builds(
    RequestFacts,
    kind=st.sampled_from(["open", "click", "unsubscribe"]),
    method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]),
    at=st.floats(0, 1e6),
    user_agent=st.sampled_from(AGENTS),
    ip=st.sampled_from(ADDRESSES),
    headers=HEADERS,
    sent_at=st.one_of(st.none(), st.floats(0, 1e6)),
    delivered_at=st.one_of(st.none(), st.floats(0, 1e6)),
    link=st.one_of(st.none(), st.integers(0, 50)),
    honeypot=st.booleans(),
)


@settings(max_examples=400)
@given(FACTS, FACTS)
def test_a_remembered_verdict_is_the_one_the_rules_give(first: RequestFacts, second: RequestFacts) -> None:
    # Each is assessed twice, the second time from the memo when it has no timing; a fact
    # pair that shares a fingerprint but differs in time or link must still agree.
    for facts in (first, second, first, second):
        assert CLASSIFIER.assess(facts) == CLASSIFIER.assess_uncached(facts)


def test_a_repeat_from_a_scanner_network_is_still_the_scanner() -> None:
    classifier = Classifier(default_data())
    for agent in AGENTS[4], AGENTS[4], AGENTS[6]:  # the address's network is remembered after the first
        facts = RequestFacts(kind="click", method="GET", at=0.0, user_agent=agent, ip="40.107.0.1")
        assert classifier.assess(facts).verdict.reasons == ("scanner_network:microsoft_eop",)


def test_hits_that_differ_only_in_time_and_link_share_one_entry() -> None:
    classifier = Classifier(default_data())
    for at in range(50):
        facts = RequestFacts(
            kind="open", method="GET", at=float(at), user_agent=AGENTS[4], ip=ADDRESSES[1], link=at
        )
        classifier.assess(facts)
    assert len(classifier._memo) == 1


def test_the_memo_is_bounded_and_skips_large_headers_and_timed_hits() -> None:
    classifier = Classifier(default_data(), ClassifierConfig(verdict_memo=3))
    for i in range(10):
        classifier.assess(
            RequestFacts(kind="open", method="GET", at=0.0, user_agent=f"agent {i}", ip=f"192.0.2.{i}")
        )
    assert 1 <= len(classifier._memo) <= 3
    assert 1 <= len(classifier._network_of) <= 3  # the networks of addresses, remembered alike
    classifier._memo.clear()
    huge = {"referer": "https://example.com/" + "a" * 4096}
    classifier.assess(RequestFacts(kind="open", method="GET", at=0.0, headers=huge))
    classifier.assess(RequestFacts(kind="open", method="GET", at=10.0, sent_at=0.0))
    assert classifier._memo == {}
    off = Classifier(default_data(), ClassifierConfig(verdict_memo=0))
    off.assess(RequestFacts(kind="open", method="GET", at=0.0))
    assert off._memo == {}
