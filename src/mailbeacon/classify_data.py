"""The classifier's shipped data, read from the package: the one place that does the I/O.

``mailbeacon/data/bot_patterns.txt`` comes from crawler-user-agents (refresh with
``scripts/refresh_classify_data.py``); ``mailbeacon/data/networks.csv`` is kept by
hand from the published lists its rows cite. Apple's Private Relay egress list is
too large to ship (~12 MB); an operator who downloads it passes its path.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from mailbeacon.core.classify import (
    BotPatterns,
    Classifier,
    ClassifierConfig,
    ClassifierData,
    NetworkEntry,
    Scope,
)

if TYPE_CHECKING:
    from mailbeacon.config import Settings

__all__ = ["apple_egress_networks", "classifier_for", "default_classifier", "default_data"]


def _read(name: str) -> str:
    return (resources.files("mailbeacon") / "data" / name).read_text(encoding="utf-8")


@cache
def default_data() -> ClassifierData:
    """The shipped bot patterns and networks (read once per process)."""
    return ClassifierData(
        BotPatterns.from_text(_read("bot_patterns.txt")), tuple(NetworkEntry.from_csv(_read("networks.csv")))
    )


def default_classifier(config: ClassifierConfig | None = None) -> Classifier:
    return Classifier(default_data(), config)


def classifier_for(settings: Settings) -> Classifier:
    """The classifier ``MAILBEACON_*`` settings describe (the server and ``mailbeacon reclassify``)."""
    config = settings.classify
    if settings.apple_egress_file is not None:
        extra = (*config.extra_networks, *apple_egress_networks(settings.apple_egress_file))
        config = replace(config, extra_networks=extra)
    return default_classifier(config)


def apple_egress_networks(path: str | Path) -> tuple[NetworkEntry, ...]:
    """Networks from Apple's ``egress-ip-ranges.csv`` (prefix,country,region,city).

    The same egress carries MPP's prefetch and Private Relay users' own browsing, so an
    open from it is ``probable`` and a click ``human_possible`` (machine-traffic.md §4).
    Pass the result as ``ClassifierConfig(extra_networks=...)``.
    """
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return tuple(
            NetworkEntry(
                row[0].strip(), "apple_private_relay", Scope.PROBABLE, Scope.HUMAN_POSSIBLE, "Apple egress"
            )
            for row in csv.reader(handle)
            if row and row[0].strip() and not row[0].startswith("#")
        )
