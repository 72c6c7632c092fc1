"""Classifier.revise: what a message's hits reveal together."""

from __future__ import annotations

import pytest

from mailbeacon.classify_data import default_data
from mailbeacon.core.classify import Classifier
from mailbeacon.core.events import Classification, RequestFacts

HUMAN, MACHINE, UNKNOWN = Classification.HUMAN, Classification.MACHINE, Classification.UNKNOWN
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


def hit(
    kind: str, at: float, link: int | None = None, ip: str = "198.51.100.7", **kw: object
) -> RequestFacts:
    return RequestFacts(
        kind=kind, method="GET", at=at, user_agent=CHROME, ip=ip, sent_at=0.0, link=link, **kw
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier(default_data())


def test_clicks_on_every_link_within_seconds_are_a_burst(classifier: Classifier) -> None:
    verdicts = classifier.revise([hit("click", 600.0 + i, link=i) for i in range(3)])
    assert [v.reasons for v in verdicts] == [("burst_all_links",)] * 3


def test_two_links_are_not_a_burst(classifier: Classifier) -> None:
    verdicts = classifier.revise([hit("click", 600.0, link=0), hit("click", 601.0, link=1)])
    assert {v.classification for v in verdicts} == {HUMAN}


def test_the_same_link_clicked_thrice_is_not_a_burst(classifier: Classifier) -> None:
    verdicts = classifier.revise([hit("click", 600.0 + i, link=0) for i in range(3)])
    assert {v.classification for v in verdicts} == {HUMAN}


def test_honeypot_exposes_earlier_clicks_of_the_same_client(classifier: Classifier) -> None:
    verdicts = classifier.revise([hit("click", 600.0, link=0), hit("click", 900.0, link=7, honeypot=True)])
    assert [v.reasons for v in verdicts] == [("honeypot",), ("honeypot",)]


def test_honeypot_leaves_other_clients_alone(classifier: Classifier) -> None:
    person = hit("click", 600.0, link=0, ip="203.0.113.5")
    verdicts = classifier.revise([person, hit("click", 900.0, link=7, honeypot=True)])
    assert verdicts[0].classification is HUMAN


def test_click_before_open_tips_a_suspicious_click(classifier: Classifier) -> None:
    verdict = classifier.revise([hit("click", 5.0, link=0)])[0]
    assert (verdict.classification, verdict.reasons) == (
        MACHINE,
        ("within_delivery_window", "click_before_open"),
    )


def test_click_before_open_alone_is_a_person(classifier: Classifier) -> None:
    verdict = classifier.revise([hit("click", 3600.0, link=0)])[0]
    assert verdict.classification is HUMAN


def test_an_open_first_spares_the_click(classifier: Classifier) -> None:
    verdicts = classifier.revise([hit("open", 1000.0), hit("click", 1005.0, link=0, delivered_at=1000.0)])
    assert verdicts[1].classification is UNKNOWN


def test_a_persons_click_confirms_an_unknown_open(classifier: Classifier) -> None:
    verdicts = classifier.revise([hit("open", 30.0), hit("click", 1800.0, link=0)])
    assert (verdicts[0].classification, verdicts[0].reasons) == (
        HUMAN,
        ("within_delivery_window", "confirmed_by_click"),
    )


def test_a_click_does_not_make_apple_mpp_a_person(classifier: Classifier) -> None:
    mpp = RequestFacts("open", "GET", 30.0, "Mozilla/5.0", "198.51.100.7", sent_at=0.0)
    verdicts = classifier.revise([mpp, hit("click", 1800.0, link=0)])
    assert verdicts[0].classification is MACHINE


def test_revise_returns_verdicts_in_input_order(classifier: Classifier) -> None:
    late, early = hit("click", 3600.0, link=0), RequestFacts("open", "HEAD", 10.0, CHROME, sent_at=0.0)
    verdicts = classifier.revise([late, early])
    assert [v.classification for v in verdicts] == [HUMAN, MACHINE]


def test_revise_of_nothing_is_nothing(classifier: Classifier) -> None:
    assert classifier.revise([]) == []
