"""What classification adds to one tracking hit on the server, in µs (budget: 20 µs).

    .venv/bin/python benchmarks/classify_server.py

Measures, best of five runs of 100,000 calls each: the client address behind a trusted
proxy (``X-Forwarded-For``), building ``RequestFacts``, and the classifier call with a
warm user-agent memo. Without ``MAILBEACON_TRUSTED_PROXIES`` the server skips
``client_ip`` and uses the TCP peer as is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mailbeacon.classify_data import classifier_for
from mailbeacon.config import Settings
from mailbeacon.core.classify import TrustedProxies, client_ip
from mailbeacon.core.events import RequestFacts, Verdict
from mailbeacon.server.tracking import _classifier_headers

UA = (
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36"
)
RAW = [
    (b"host", b"t.example"),
    (b"user-agent", UA),
    (b"accept", b"image/avif,image/webp,*/*"),
    (b"accept-language", b"en"),
    (b"x-forwarded-for", b"198.51.100.7"),
    (b"sec-fetch-dest", b"image"),
]


def main() -> None:
    classifier = classifier_for(Settings.from_env({}))
    trusted = TrustedProxies(["10.0.0.0/8"])
    headers = _classifier_headers(RAW)

    def hit() -> Verdict:
        ip = client_ip("10.1.2.3", headers, trusted)
        facts = RequestFacts("open", "GET", time.time(), headers.get("user-agent"), ip, headers)
        return classifier(facts)

    facts = RequestFacts("open", "GET", time.time(), headers.get("user-agent"), "198.51.100.7", headers)
    cases: dict[str, Callable[[], object]] = {
        "client_ip behind a trusted proxy": lambda: client_ip("10.1.2.3", headers, trusted),
        "classifier call (warm memo)": lambda: classifier(facts),
        "whole hit: client_ip + facts + classifier": hit,
    }
    for name, run in cases.items():
        print(f"{name:45} {_best(run):6.2f} µs")


def _best(run: Callable[[], object], calls: int = 100_000) -> float:
    run()
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


if __name__ == "__main__":
    main()
