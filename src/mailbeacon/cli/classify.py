"""``mailbeacon classify [FILE]``: replay hits through the classifier, one JSON line each.

Input (FILE, or stdin when FILE is absent or ``-``) is JSON lines, one hit each::

    {"kind": "open", "ua": "Mozilla/5.0", "ip": "17.58.1.1", "method": "GET",
     "headers": {"sec-purpose": "prefetch"}, "message": "m1", "link": null,
     "t": 4.2, "delivered_t": 3.9, "honeypot": false}

Only ``kind`` (``open``, ``click`` or ``unsubscribe``) is required. ``t`` and
``delivered_t`` are seconds after the message was sent. Hits with the same
``message`` are judged together, so a later line can change an earlier one's
verdict (a honeypot click exposes the same client's earlier clicks).

Output: each input object, in input order, with ``classification``, ``reasons``
and ``confidence`` added. A line that is not a valid hit prints
``{"line": N, "error": "..."}`` in its place, the others are still classified,
and the exit status is 1. Blank lines are skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import IO, Any, Final

import click

from mailbeacon.classify_data import default_classifier
from mailbeacon.core.classify import Classifier, ClassifierConfig, NetworkEntry
from mailbeacon.core.events import RequestFacts, Verdict

__all__ = ["classify"]

_KINDS: Final = frozenset({"open", "click", "unsubscribe"})
_NUMBER: Final = (int, float)
# field -> (accepted JSON types, what to say when it is something else)
_FIELDS: Final[dict[str, tuple[tuple[type, ...], str]]] = {
    "ua": ((str,), "a string"),
    "ip": ((str,), "a string"),
    "method": ((str,), "a string such as GET or HEAD"),
    "headers": ((dict,), "an object of header names to strings"),
    "message": ((str, int), "a string or integer message id"),
    "link": ((int,), "an integer link index"),
    "t": (_NUMBER, "seconds after sending, a number"),
    "delivered_t": (_NUMBER, "seconds after sending, a number"),
    "honeypot": ((bool,), "true or false"),
}


class BadHit(ValueError):
    """An input line that is not a hit; the message names the field and what it should be."""


@click.command("classify")
@click.argument("file", type=click.File("r", encoding="utf-8", errors="replace"), default="-")
@click.option("--gmail-proxy-as-unknown", is_flag=True, help="Count Gmail proxy opens as unknown.")
@click.option(
    "--scanner-network",
    "scanner_networks",
    multiple=True,
    metavar="CIDR[=NAME]",
    help="A network of your own known scanners (repeatable).",
)
def classify(file: IO[str], gmail_proxy_as_unknown: bool, scanner_networks: tuple[str, ...]) -> None:
    """Classify JSON-lines hits as human, machine or unknown, with reasons."""
    try:
        extra = tuple(NetworkEntry.parse_spec(spec) for spec in scanner_networks)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scanner-network") from None
    config = ClassifierConfig(gmail_proxy_as_unknown=gmail_proxy_as_unknown, extra_networks=extra)
    results, errors = replay(default_classifier(config), file)
    for result in results:
        click.echo(json.dumps(result, ensure_ascii=False))
    if errors:
        raise SystemExit(1)


def replay(classifier: Classifier, lines: Iterable[str]) -> tuple[list[dict[str, Any]], int]:
    """Every non-blank line's output object, in input order, and how many were errors."""
    parsed: list[tuple[dict[str, Any], RequestFacts] | dict[str, Any]] = []
    for number, text in enumerate(lines, start=1):
        if text.strip():
            parsed.append(_parse_line(number, text))
    verdicts = _verdicts(classifier, [p for p in parsed if isinstance(p, tuple)])
    out = []
    for item in parsed:
        if isinstance(item, tuple):
            out.append(_with_verdict(item[0], verdicts[id(item[1])]))
        else:
            out.append(item)
    return out, sum(1 for item in parsed if not isinstance(item, tuple))


def _parse_line(number: int, text: str) -> tuple[dict[str, Any], RequestFacts] | dict[str, Any]:
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise BadHit("a line must be a JSON object")
        return data, hit_facts(data)
    except (ValueError, RecursionError) as exc:
        return {"line": number, "error": str(exc) if isinstance(exc, BadHit) else f"not JSON: {exc}"}


def hit_facts(data: dict[str, Any]) -> RequestFacts:
    """The request facts of one input object; raises BadHit naming the offending field."""
    kind = data.get("kind")
    if kind not in _KINDS:
        raise BadHit(f"kind must be one of open, click, unsubscribe (got {kind!r})")
    for name, (types, wanted) in _FIELDS.items():  # one table, so every field's error reads alike
        value = data.get(name)
        if value is not None and (not isinstance(value, types) or _bool_as_number(value, types)):
            raise BadHit(f"{name} must be {wanted} (got {value!r})")
    headers = {str(k).lower(): v for k, v in (data.get("headers") or {}).items()}
    if not all(isinstance(v, str) for v in headers.values()):
        raise BadHit("headers must be an object of header names to strings")
    t, delivered = _seconds(data.get("t"), "t"), _seconds(data.get("delivered_t"), "delivered_t")
    return RequestFacts(
        kind=kind,
        method=data.get("method") or "GET",
        at=t if t is not None else 0.0,
        user_agent=data.get("ua") if "ua" in data else headers.get("user-agent"),
        ip=data.get("ip"),
        headers=headers,
        sent_at=0.0 if t is not None else None,
        delivered_at=delivered,
        link=data.get("link"),
        honeypot=bool(data.get("honeypot")),
    )


def _bool_as_number(value: object, types: tuple[type, ...]) -> bool:
    # JSON true is a Python int; it is not a link index or a time.
    return isinstance(value, bool) and bool not in types


def _seconds(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise BadHit(f"{name} must be a finite number of seconds")
    return float(value) if value is not None else None


def _verdicts(classifier: Classifier, items: list[tuple[dict[str, Any], RequestFacts]]) -> dict[int, Verdict]:
    # Hits of one message are revised together; a hit without a message stands alone.
    groups: dict[object, list[RequestFacts]] = {}
    for data, facts in items:
        message = data.get("message")
        groups.setdefault(("m", message) if message is not None else ("hit", id(facts)), []).append(facts)
    verdicts: dict[int, Verdict] = {}
    for hits in groups.values():
        verdicts.update(zip(map(id, hits), classifier.revise(hits), strict=True))
    return verdicts


def _with_verdict(data: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    return {
        **data,
        "classification": verdict.classification.value,
        "reasons": list(verdict.reasons),
        "confidence": verdict.confidence,
    }
