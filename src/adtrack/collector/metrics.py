"""Prometheus metrics of one collector.

The hot path only bumps plain integers in dicts (tens of nanoseconds); they are turned into
Prometheus families when ``/metrics`` is scraped. Only the per-batch store latency uses a
``prometheus_client`` histogram (one observation per batch, not per request).

Each :class:`CollectorMetrics` has its own registry, so several collectors can live in one
process (tests); ``registry`` is what a transport renders at ``/metrics``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CollectorMetrics", "PROMETHEUS_CONTENT_TYPE"]

PROMETHEUS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

_IMP_TYPE_LABEL = {9: "impression", 10: "click", 11: "conversion"}


class CollectorMetrics:
    """Counters the collector bumps, and their Prometheus rendering."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}  # by path
        # (imp_type, invalid reason or None for valid) -> events stored and answered
        self.events: Counter[tuple[int, str | None]] = Counter()
        self.rejected: dict[str, int] = {}  # by reason
        # why a redir was not followed: refused, not_last, userinfo, not_allowed_domain, or
        # the tracker's rejection (unknown_tracker, missing_id, inactive_tracker, ...)
        self.redir: dict[str, int] = {}
        self.invalid_ancost = 0
        self.unavailable = 0  # requests answered 503
        self.store_failures = 0  # failed appends (batches)
        self.queue_depth = 0  # events waiting for the store
        self.connections = 0
        # requests and connections refused or closed by a limit (see docs/limits.md), by reason
        self.refused: dict[str, int] = {}
        # viewability beacons: stored by state (measured, viewable), or refused by reason
        # (bad_token, no_token, bad_state, expired); docs/tracking.md, "Viewability"
        self.view_beacons: dict[str, int] = {}
        self._gauges: list[tuple[str, str, Callable[[], float]]] = []
        self.registry = CollectorRegistry(auto_describe=True)
        self.store_latency = Histogram(
            "adtrack_collector_store_latency_seconds",
            "Time to make one batch of events durable in the event log.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "adtrack_collector_batch_events",
            "Events per append to the event log (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
            registry=self.registry,
        )
        self.registry.register(_Families(self))

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        """Expose ``read()`` as a gauge (read at scrape time)."""
        self._gauges.append((name, documentation, read))

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _by_reason(name: str, documentation: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["reason"])
    for reason, value in sorted(counts.items()):
        family.add_metric([reason], value)
    return family


class _Families(Collector):
    def __init__(self, metrics: CollectorMetrics) -> None:
        self._m = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self._m
        family = CounterMetricFamily(
            "adtrack_collector_requests", "HTTP requests by endpoint.", labels=["endpoint"]
        )
        for path, value in sorted(m.requests.items()):
            family.add_metric([path.lstrip("/")], value)
        yield family
        family = CounterMetricFamily(
            "adtrack_collector_events",
            "Events stored and answered (impressions, clicks, conversions of /sspx and /px), by "
            "type and invalid-traffic verdict.",
            labels=["type", "verdict"],
        )
        for (imp_type, reason), value in sorted(m.events.items(), key=lambda kv: str(kv[0])):
            label = _IMP_TYPE_LABEL.get(imp_type, str(imp_type))
            family.add_metric([label, reason or "valid"], value)
        yield family
        yield _by_reason(
            "adtrack_collector_rejected",
            "Requests answered but recorded nothing billable, by reason.",
            m.rejected,
        )
        yield _by_reason(
            "adtrack_collector_redir_ignored",
            "redir parameters not followed, by why: refused (not http(s) with a host), "
            "not_last, userinfo, not_allowed_domain, or the tracker's rejection "
            "(unknown_tracker, missing_id, inactive_tracker, wrong_tracker_type).",
            m.redir,
        )
        yield _by_reason(
            "adtrack_collector_refused",
            "Requests and connections refused or closed by a limit, by reason.",
            m.refused,
        )
        family = CounterMetricFamily(
            "adtrack_collector_view_beacons",
            "Viewability beacons: stored (measured, viewable) or ignored (bad_token, no_token, "
            "bad_state, expired).",
            labels=["outcome"],
        )
        for outcome, value in sorted(m.view_beacons.items()):
            family.add_metric([outcome], value)
        yield family
        yield CounterMetricFamily(
            "adtrack_collector_invalid_ancost",
            "ancost values ignored as invalid (the payment rule applied).",
            value=m.invalid_ancost,
        )
        yield CounterMetricFamily(
            "adtrack_collector_unavailable",
            "Requests answered 503 because the event store could not take writes.",
            value=m.unavailable,
        )
        yield CounterMetricFamily(
            "adtrack_collector_store_failures",
            "Appends to the event log that failed.",
            value=m.store_failures,
        )
        yield GaugeMetricFamily(
            "adtrack_collector_queue_depth",
            "Events waiting to be made durable.",
            value=m.queue_depth,
        )
        yield GaugeMetricFamily(
            "adtrack_collector_connections", "Open client connections.", value=m.connections
        )
        for name, documentation, read in m._gauges:
            yield GaugeMetricFamily(name, documentation, value=read())
