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
    def __init__(self, recorder: Recorder, counts: Mapping[str, int]) -> None:
        self.recorder = recorder
        self.counts = counts

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


def render_metrics(recorder: Recorder, counts: Mapping[str, int]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(recorder, counts))
    return generate_latest(registry).decode("utf-8")
