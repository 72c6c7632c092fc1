"""What a message's hits, taken together, reveal about each of them.

A single request can look human and still be a scanner: only the pattern across
the message gives it away. ``revise`` takes one message's hits (any order) with
their per-hit assessments and returns revised verdicts, in input order:

- ``click_before_open``: a click with no earlier open is a hint (ValueBuilder:
  "click before open within the first 30 s"); with the delivery-window hint it
  makes a machine, alone it does not (image-blocking clients click without opening).
- ``burst_all_links``: clicks on ``burst_min_links`` distinct links within
  ``burst_seconds`` are a scanner walking the message (CustomerMinds, Constant
  Contact, craft-campaign#546, anymail#200).
- ``honeypot``: a client that followed the hidden link is a machine for every hit
  of the message, earlier ones included (Spotler, Kit).
- ``confirmed_by_click``: an ``unknown`` open followed by a person's click from the
  same client was that person (warmbly: "a later real open upgrades them").

A machine fetch stays a machine: that a person's later click makes the message
"opened" is the status rule "a click implies an open" (``core.status``). Apple MPP
opens are machines, never ``unknown``, so no click upgrades them.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailbeacon.core.classify.config import ClassifierConfig
from mailbeacon.core.classify.rules import Assessment, from_hints
from mailbeacon.core.events import Classification, RequestFacts, Verdict

__all__ = ["revise"]

MACHINE, HUMAN, UNKNOWN = Classification.MACHINE, Classification.HUMAN, Classification.UNKNOWN


def revise(
    hits: Sequence[RequestFacts], assessed: Sequence[Assessment], config: ClassifierConfig
) -> list[Verdict]:
    """Revised verdicts for one message's ``hits`` (``assessed[i]`` belongs to ``hits[i]``)."""
    order = sorted(range(len(hits)), key=lambda i: _time(hits[i]))
    verdicts = _with_click_before_open(hits, assessed, order)
    for i in _bursts(hits, order, config):
        verdicts[i] = _machine(verdicts[i], "burst_all_links", 0.85)
    for i in _honeypot_clients(hits):
        verdicts[i] = _machine(verdicts[i], "honeypot", 0.99)
    for i in _confirmed_opens(hits, verdicts, order):
        verdicts[i] = Verdict(HUMAN, (*verdicts[i].reasons, "confirmed_by_click"), 0.7)
    return verdicts


def _time(facts: RequestFacts) -> float:
    at = facts.at
    return at if at == at else 0.0  # NaN sorts nowhere; treat it as the start


def _client(facts: RequestFacts) -> str:
    return facts.ip or facts.user_agent or ""


def _with_click_before_open(
    hits: Sequence[RequestFacts], assessed: Sequence[Assessment], order: list[int]
) -> list[Verdict]:
    verdicts = [a.verdict for a in assessed]
    opened = False
    for i in order:
        opened = opened or hits[i].kind == "open"
        if hits[i].kind == "click" and not opened and not assessed[i].decided:
            verdicts[i] = from_hints((*assessed[i].weak, "click_before_open"))
    return verdicts


def _bursts(hits: Sequence[RequestFacts], order: list[int], config: ClassifierConfig) -> set[int]:
    clicks = [i for i in order if hits[i].kind == "click" and hits[i].link is not None]
    found: set[int] = set()
    end = 0
    for start, first in enumerate(clicks):
        end = max(end, start)
        while (
            end + 1 < len(clicks)
            and _time(hits[clicks[end + 1]]) - _time(hits[first]) <= config.burst_seconds
        ):
            end += 1
        window = clicks[start : end + 1]
        if len({hits[i].link for i in window}) >= config.burst_min_links:
            found.update(window)
    return found


def _honeypot_clients(hits: Sequence[RequestFacts]) -> list[int]:
    caught = {_client(h) for h in hits if h.honeypot}
    return [i for i, h in enumerate(hits) if _client(h) in caught]


def _confirmed_opens(hits: Sequence[RequestFacts], verdicts: list[Verdict], order: list[int]) -> list[int]:
    confirmed, waiting = [], []
    for i in order:
        if hits[i].kind == "open" and verdicts[i].classification is UNKNOWN:
            waiting.append(i)
        elif hits[i].kind == "click" and verdicts[i].classification is HUMAN:
            client = _client(hits[i])
            confirmed += [j for j in waiting if _client(hits[j]) == client]
            waiting = [j for j in waiting if _client(hits[j]) != client]
    return confirmed


def _machine(verdict: Verdict, reason: str, confidence: float) -> Verdict:
    if verdict.classification is MACHINE:
        reasons = verdict.reasons if reason in verdict.reasons else (*verdict.reasons, reason)
        return Verdict(MACHINE, reasons, max(verdict.confidence, confidence))
    return Verdict(MACHINE, (reason,), confidence)
