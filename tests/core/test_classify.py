"""Classifier.classify: one hit in, a verdict with reasons out; one behaviour per test."""

from __future__ import annotations

import pytest

from mailbeacon.classify_data import default_data
from mailbeacon.core.classify import Classifier, ClassifierConfig, NetworkEntry
from mailbeacon.core.events import Classification, RequestFacts

HUMAN, MACHINE, UNKNOWN = Classification.HUMAN, Classification.MACHINE, Classification.UNKNOWN
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
GMAIL_PREFETCH = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.4266; Pro)"
BARE_WEBKIT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
HOME = "198.51.100.7"
LATE = 3600.0


def hit(
    kind: str = "open", ua: str | None = CHROME, ip: str | None = HOME, at: float = LATE, **kw: object
) -> RequestFacts:
    return RequestFacts(
        kind=kind, method=str(kw.pop("method", "GET")), at=at, user_agent=ua, ip=ip, sent_at=0.0, **kw
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(default_data())


def test_a_plain_browser_long_after_delivery_is_a_person(classifier: Classifier) -> None:
    verdict = classifier.classify(hit("click"))
    assert verdict.classification is HUMAN
    assert verdict.reasons == ("no_machine_signal",)


def test_head_is_a_machine_whatever_the_user_agent(classifier: Classifier) -> None:
    assert classifier.classify(hit(ua=GMAIL_PROXY, method="HEAD")).reasons == ("head_request",)


def test_prefetch_header_is_a_machine(classifier: Classifier) -> None:
    verdict = classifier.classify(hit("click", headers={"sec-purpose": "prefetch;prerender"}))
    assert (verdict.classification, verdict.reasons) == (MACHINE, ("prefetch_header",))


def test_apple_mpp_open_is_never_a_person(classifier: Classifier) -> None:
    verdict = classifier.classify(hit(ua="Mozilla/5.0", ip="17.58.1.1"))
    assert (verdict.classification, verdict.reasons) == (MACHINE, ("apple_mpp",))


def test_gmail_image_proxy_open_is_a_person(classifier: Classifier) -> None:
    verdict = classifier.classify(hit(ua=GMAIL_PROXY, ip="66.102.6.177", at=5.0))
    assert (verdict.classification, verdict.reasons) == (HUMAN, ("mail_proxy:gmail",))


def test_gmail_image_proxy_can_be_counted_unknown(classifier: Classifier) -> None:
    strict = Classifier(default_data(), ClassifierConfig(gmail_proxy_as_unknown=True))
    assert strict.classify(hit(ua=GMAIL_PROXY)).classification is UNKNOWN


def test_gmail_prefetch_is_a_machine(classifier: Classifier) -> None:
    assert classifier.classify(hit(ua=GMAIL_PREFETCH, ip="108.177.2.32")).reasons == ("gmail_prefetch",)


def test_an_image_proxy_never_clicks(classifier: Classifier) -> None:
    assert classifier.classify(hit("click", ua=GMAIL_PROXY)).classification is MACHINE


def test_microsoft_eop_click_is_a_machine(classifier: Classifier) -> None:
    verdict = classifier.classify(hit("click", ip="40.107.218.12"))
    assert verdict.reasons == ("scanner_network:microsoft_eop",)


def test_microsoft_eop_ipv6_is_found(classifier: Classifier) -> None:
    assert classifier.classify(hit(ip="2a01:111:f400::17")).reasons == ("scanner_network:microsoft_eop",)


def test_outlook_on_the_web_open_from_exchange_online_is_a_person(classifier: Classifier) -> None:
    assert classifier.classify(hit(ip="52.96.40.12")).classification is HUMAN


def test_exchange_online_click_right_after_delivery_is_a_machine(classifier: Classifier) -> None:
    verdict = classifier.classify(hit("click", ip="52.96.40.12", at=60.0))
    assert verdict.reasons == ("scanner_network:exchange_online",)


def test_isolation_click_long_after_delivery_is_a_person(classifier: Classifier) -> None:
    assert classifier.classify(hit("click", ip="148.163.150.20", at=7200.0)).classification is HUMAN


def test_isolation_click_inside_the_probable_window_is_a_machine(classifier: Classifier) -> None:
    assert classifier.classify(hit("click", ip="148.163.150.20", at=100.0)).classification is MACHINE


def test_operator_scanner_network_is_a_machine() -> None:
    config = ClassifierConfig(extra_networks=(NetworkEntry.parse_spec("192.0.2.0/24=acme"),))
    verdict = Classifier(default_data(), config).classify(hit(ip="192.0.2.9"))
    assert verdict.reasons == ("scanner_network:acme",)


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "link_unfurler:slack"),
        ("Discordbot/2.0; +https://discordapp.com", "link_unfurler:discord"),
        ("Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5", "link_unfurler:teams"),
        (
            "Mozilla/5.0 (Macintosh) Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "link_unfurler:imessage",
        ),
        ("python-requests/2.32.3", "http_client"),
        ("curl/8.4.0", "http_client"),
        ("Barracuda Sentinel (EE)", "scanner:barracuda"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot_user_agent"),
        (OUTLOOK, "office_preflight"),
    ],
)
def test_self_identifying_machines_on_a_link(classifier: Classifier, ua: str, reason: str) -> None:
    verdict = classifier.classify(hit("click", ua=ua))
    assert (verdict.classification, verdict.reasons) == (MACHINE, (reason,))


def test_outlook_desktop_open_right_after_delivery_is_a_person(classifier: Classifier) -> None:
    assert classifier.classify(hit(ua=OUTLOOK, at=1.0)).reasons == ("mail_client:outlook",)


def test_a_browser_hit_within_two_seconds_is_a_machine(classifier: Classifier) -> None:
    assert classifier.classify(hit("click", at=1.0)).reasons == ("within_delivery_window",)


def test_one_hint_leaves_a_hit_unknown(classifier: Classifier) -> None:
    verdict = classifier.classify(hit("open", at=30.0))
    assert (verdict.classification, verdict.reasons) == (UNKNOWN, ("within_delivery_window",))


def test_two_hints_make_a_machine(classifier: Classifier) -> None:
    verdict = classifier.classify(hit("open", ua=BARE_WEBKIT, at=30.0))
    assert (verdict.classification, verdict.reasons) == (MACHINE, ("within_delivery_window", "bare_webkit"))


def test_bare_webkit_alone_is_a_person(classifier: Classifier) -> None:
    assert classifier.classify(hit(ua=BARE_WEBKIT)).classification is HUMAN


def test_timing_counts_from_delivery_when_known(classifier: Classifier) -> None:
    late_delivery = hit("open", at=1000.0, delivered_at=990.0)
    assert classifier.classify(late_delivery).reasons == ("within_delivery_window",)


def test_stale_chrome_with_delivery_timing_is_a_machine(classifier: Classifier) -> None:
    stale = CHROME.replace("Chrome/124.0.0.0", "Chrome/101.0.4951.64")
    assert classifier.classify(hit("click", ua=stale, at=5.0)).classification is MACHINE


def test_missing_user_agent_is_a_machine(classifier: Classifier) -> None:
    assert classifier.classify(hit(ua=None)).reasons == ("missing_user_agent",)


def test_sender_own_view_is_not_the_recipient(classifier: Classifier) -> None:
    config = ClassifierConfig(sender_origins=("https://desk.example.com/",))
    facts = hit(headers={"referer": "https://desk.example.com/tickets/42"})
    assert Classifier(default_data(), config).classify(facts).reasons == ("sender_own_view",)


def test_honeypot_click_is_a_machine(classifier: Classifier) -> None:
    assert classifier.classify(hit("click", honeypot=True)).reasons == ("honeypot",)


def test_classifier_is_callable_as_the_server_seam(classifier: Classifier) -> None:
    facts = hit("click")
    assert classifier(facts) == classifier.classify(facts)


def test_memo_does_not_change_verdicts(classifier: Classifier) -> None:
    facts = hit("click", ua="Wget/1.21.4")
    assert classifier.assess(facts) == classifier.assess_uncached(facts) == classifier.assess(facts)


def test_stale_chrome_alone_is_a_person(classifier: Classifier) -> None:
    stale = CHROME.replace("Chrome/124.0.0.0", "Chrome/101.0.4951.64")
    assert classifier.classify(hit("click", ua=stale)).classification is HUMAN
