"""How often the classifier is wrong on labelled public request signatures, and what it costs.

    .venv/bin/python benchmarks/classify.py [--json] [--repeat N]

Reads benchmarks/data/classify_eval.jsonl (one labelled hit per line, each with its
``source``), classifies it the way ``mailbeacon classify`` does (hits of one
``message`` revised together), and prints:

- machine hits called human (target < 10 %), human hits called machine (< 3 %),
  hits left unknown (< 10 %), and every row that missed;
- µs per ``Classifier.classify`` call over the same hits, with the user-agent memo
  warm (repeat traffic) and cold (every user agent new), best of ``--repeat`` runs.

The exit status is 0 even when a target fails: this is a report.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mailbeacon.classify_data import default_classifier
from mailbeacon.cli.classify import hit_facts
from mailbeacon.core.classify import Classifier
from mailbeacon.core.events import RequestFacts, Verdict

EVAL = Path(__file__).parent / "data" / "classify_eval.jsonl"
TARGETS = {"machine_called_human": 0.10, "human_called_machine": 0.03, "unknown": 0.10}
CALL_BUDGET_US = 20.0


def load() -> list[tuple[dict[str, Any], RequestFacts]]:
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row, hit_facts(row)) for row in rows]


def verdicts(classifier: Classifier, rows: list[tuple[dict[str, Any], RequestFacts]]) -> list[Verdict]:
    groups: dict[object, list[int]] = {}
    for i, (row, _) in enumerate(rows):
        groups.setdefault(row.get("message", ("hit", i)), []).append(i)
    out: list[Verdict | None] = [None] * len(rows)
    for members in groups.values():
        for i, verdict in zip(members, classifier.revise([rows[i][1] for i in members]), strict=True):
            out[i] = verdict
    return [v for v in out if v is not None]


def shares(rows: list[tuple[dict[str, Any], RequestFacts]], got: list[Verdict]) -> dict[str, float]:
    pairs = Counter((row["label"], v.classification.value) for (row, _), v in zip(rows, got, strict=True))
    machines = sum(n for (label, _), n in pairs.items() if label == "machine")
    humans = sum(n for (label, _), n in pairs.items() if label == "human")
    unknown = sum(n for (_, verdict), n in pairs.items() if verdict == "unknown")
    return {
        "machine_called_human": pairs["machine", "human"] / machines,
        "human_called_machine": pairs["human", "machine"] / humans,
        "unknown": unknown / len(rows),
    }


def per_call_us(classifier: Classifier, facts: list[RequestFacts], repeat: int, cold: bool) -> float:
    call = classifier.assess_uncached if cold else classifier.assess
    loops = 200
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(loops):
            for hit in facts:
                call(hit)
        best = min(best, time.perf_counter() - start)
    return best / (loops * len(facts)) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="machine-readable results only")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    classifier = default_classifier()
    rows = load()
    got = verdicts(classifier, rows)
    result = {
        "rows": len(rows),
        "labels": dict(Counter(row["label"] for row, _ in rows)),
        **shares(rows, got),
        "us_per_call_warm": per_call_us(classifier, [f for _, f in rows], args.repeat, cold=False),
        "us_per_call_cold": per_call_us(classifier, [f for _, f in rows], args.repeat, cold=True),
    }
    misses = [
        {"label": row["label"], "got": v.classification.value, "reasons": list(v.reasons), "ua": row["ua"]}
        for (row, _), v in zip(rows, got, strict=True)
        if v.classification.value != row["label"]
    ]
    if args.json:
        print(json.dumps({**result, "misses": misses}, indent=2))
        return 0
    print(f"Python {platform.python_version()}, {EVAL.name}: {result['rows']} rows {result['labels']}")
    for name, target in TARGETS.items():
        verdict = "ok" if result[name] < target else "FAIL"
        print(f"  {name:<22} {result[name]:6.1%}   target < {target:.0%}   {verdict}")
    for name in ("us_per_call_warm", "us_per_call_cold"):
        verdict = "ok" if result[name] < CALL_BUDGET_US else "FAIL"
        print(f"  {name:<22} {result[name]:6.2f}   target < {CALL_BUDGET_US:.0f} µs   {verdict}")
    for miss in misses:
        print(f"  miss: {miss['label']} -> {miss['got']} {miss['reasons']} {str(miss['ua'])[:70]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
