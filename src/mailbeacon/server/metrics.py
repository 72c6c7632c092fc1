"""``/metrics`` in the Prometheus text format, from plain counters.

The hot path only bumps ints in dicts; the exposition is built when scraped,
with ``prometheus_client``'s metric families so the format is right.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mailbeacon.store.recorder import Recorder

__all__ = ["render_metrics"]


class _Collector:
    def __init__(self, recorder: Recorder, counts: Mapping[str, int], hitlog: Mapping[str, float]) -> None:
        self.recorder = recorder
        self.counts = counts
        self.hitlog = hitlog

    def collect(self) -> Iterator[Metric]:
        hits = CounterMetricFamily(
            "mailbeacon_tracking_requests", "Tracking requests by outcome", labels=["outcome", "detail"]
        )
        for name, value in sorted(self.counts.items()):
            outcome, _, detail = name.partition(":")
            hits.add_metric([outcome, detail], value)
        yield hits
        recorder = self.recorder
        yield CounterMetricFamily("mailbeacon_events_committed", "Events committed", value=recorder.rows)
        yield CounterMetricFamily("mailbeacon_commit_batches", "Group commits", value=recorder.batches)
        yield CounterMetricFamily(
            "mailbeacon_events_failed", "Events whose commit failed", value=recorder.failures
        )
        yield CounterMetricFamily(
            "mailbeacon_commit_seconds", "Time spent committing event batches", value=recorder.commit_seconds
        )
        yield GaugeMetricFamily(
            "mailbeacon_events_queued", "Events waiting for commit", value=recorder.queued
        )
        hitlog = self.hitlog
        yield CounterMetricFamily(
            "mailbeacon_hits_logged", "Hits written to this worker's hit log", value=hitlog["rows"]
        )
        yield CounterMetricFamily(
            "mailbeacon_hitlog_writes", "Group writes to the hit log", value=hitlog["batches"]
        )
        yield CounterMetricFamily(
            "mailbeacon_hits_failed", "Hits the hit log could not write", value=hitlog["failures"]
        )
        yield CounterMetricFamily(
            "mailbeacon_hitlog_seconds",
            "Time spent writing (and syncing) the hit log",
            value=hitlog["seconds"],
        )
        yield GaugeMetricFamily(
            "mailbeacon_hits_queued", "Hits waiting to be written", value=hitlog["queued"]
        )


def render_metrics(recorder: Recorder, counts: Mapping[str, int], hitlog: Mapping[str, float]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(recorder, counts, hitlog))
    return generate_latest(registry).decode("utf-8")
