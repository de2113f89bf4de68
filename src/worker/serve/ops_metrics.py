"""GET /metrics: the state store as Prometheus metrics, through `prometheus_client`.

A custom collector reads the store at scrape time (a few grouped SQL queries, see `worker.state.run_stats`),
so several `serve` processes on one store expose the same figures, and a restart resets nothing.

Counters are sums over *every* stored run (never a window), so they only grow: a run is counted once it
is no longer running. Every series of a configured connection is exposed from zero (each status of
`bant_sync_runs_total` too), so `increase()` sees a connection's first failure. Labels are `connection`
(the configured name), `status`, `crm`.

| metric | kind | labels |
|---|---|---|
| `bant_sync_runs_total` | counter | connection, status (RUN_STATUSES: every status but running) |
| `bant_sync_deals_written_total` | counter | connection (deal statuses written; dry runs excluded) |
| `bant_sync_rows_rejected_total` | counter | connection (rows the CRM refused: statuses and tasks) |
| `bant_sync_tasks_created_total` | counter | connection (dry runs excluded) |
| `bant_sync_tasks_completed_total` | counter | connection (dry runs excluded) |
| `bant_sync_api_calls_total` | counter | connection, crm |
| `bant_sync_run_duration_seconds` | histogram | connection (finished runs, finished_at - started_at) |
| `bant_sync_last_success_timestamp_seconds` | gauge | connection (absent until a run succeeds) |
| `bant_sync_last_run_finished_timestamp_seconds` | gauge | connection (absent until a run finishes) |
| `bant_sync_deals` | gauge | connection, status (open deals as last assessed) |
| `bant_sync_lease_held` | gauge | connection |
| `bant_sync_connection_degraded` | gauge | connection (1 when `/health` calls it degraded) |
| `bant_sync_connection_enabled` | gauge | connection (1 when scheduled: `enabled = true`) |
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from worker.serve.ops_health import HealthCheck
from worker.service import Worker
from worker.state import StateStore
from worker.state.events import INF
from worker.state.model import RunStatus

DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
"""Run duration histogram bounds, seconds: a one-deal run takes seconds, a full sweep up to the run
deadline (`[run] deadline_minutes`, 120 by default)."""
RUN_STATUSES = tuple(
    s.value
    for s in (
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.STOPPED,
        RunStatus.QUOTA_STOPPED,
        RunStatus.ABANDONED,
    )
)
"""The statuses `bant_sync_runs_total` counts (every one exposed from 0 for each connection)."""
CONTENT_TYPE = CONTENT_TYPE_LATEST


class StoreCollector(Collector):
    """Every bant-sync metric, read from the worker's state store at each collect (scrape)."""

    def __init__(self, worker: Worker, health: HealthCheck) -> None:
        self._worker = worker
        self._health = health

    def collect(self) -> Iterator[Metric]:
        worker = self._worker
        store = worker.store
        names = list(worker.settings.connections)
        now = worker.clock()

        runs = CounterMetricFamily(
            "bant_sync_runs",
            "Runs no longer running, by connection and status.",
            labels=["connection", "status"],
        )
        written = {
            key: CounterMetricFamily(f"bant_sync_{key}", text, labels=["connection"])
            for key, text in (
                ("deals_written", "Deal statuses written to the CRM (dry runs excluded)."),
                ("tasks_created", "Follow-up tasks created in the CRM (dry runs excluded)."),
                ("tasks_completed", "Follow-up tasks completed in the CRM (dry runs excluded)."),
            )
        }
        rejected = CounterMetricFamily(
            "bant_sync_rows_rejected",
            "Rows (statuses and tasks) the CRM refused, over every run.",
            labels=["connection"],
        )
        api_calls = CounterMetricFamily(
            "bant_sync_api_calls", "CRM API calls made by finished runs.", labels=["connection", "crm"]
        )
        totals = {(t.connection, t.status): t for t in store.run_totals()}
        rejections = store.rejection_totals()
        for name in names:
            crm = worker.settings.connections[name].crm
            by_status = {s: totals.get((name, s)) for s in RUN_STATUSES}
            stored = [t for (c, _), t in totals.items() if c == name]
            for status, total in by_status.items():
                runs.add_metric([name, status], total.runs if total else 0)
            for key, family in written.items():
                family.add_metric([name], sum(t.written[f"{key}"] for t in stored))
            rejected.add_metric([name], rejections.get(name, 0))
            api_calls.add_metric([name, crm], sum(t.api_calls for t in stored))
        yield runs
        yield from written.values()
        yield rejected
        yield api_calls

        duration = HistogramMetricFamily(
            "bant_sync_run_duration_seconds",
            "Duration of finished runs (finished_at - started_at), by connection.",
            labels=["connection"],
        )
        durations = store.run_durations(DURATION_BUCKETS)
        for name in names:
            stats = durations.get(name)
            counts = stats.at_most if stats else (0,) * len(DURATION_BUCKETS)
            buckets = [(repr(float(b)), n) for b, n in zip(DURATION_BUCKETS, counts, strict=True)]
            buckets.append(("+Inf", stats.count if stats else 0))
            duration.add_metric([name], buckets, stats.total_seconds if stats else 0.0)
        yield duration

        success = GaugeMetricFamily(
            "bant_sync_last_success_timestamp_seconds",
            "Unix time the connection's latest succeeded run finished (absent until one succeeds).",
            labels=["connection"],
        )
        finished = GaugeMetricFamily(
            "bant_sync_last_run_finished_timestamp_seconds",
            "Unix time the connection's latest run finished, whatever its status.",
            labels=["connection"],
        )
        times = store.run_times()
        for name in names:
            at = times.get(name)
            if at is not None and at.last_succeeded is not None:
                success.add_metric([name], at.last_succeeded.timestamp())
            if at is not None and at.last_finished is not None:
                finished.add_metric([name], at.last_finished.timestamp())
        yield success
        yield finished

        deals = GaugeMetricFamily(
            "bant_sync_deals",
            "Known open deals by connection and qualification status.",
            labels=["connection", "status"],
        )
        leases = GaugeMetricFamily(
            "bant_sync_lease_held",
            "1 while a run holds the connection's lease, else 0.",
            labels=["connection"],
        )
        degraded = GaugeMetricFamily(
            "bant_sync_connection_degraded",
            "1 while /health calls the connection degraded (failing or stale), else 0.",
            labels=["connection"],
        )
        enabled = GaugeMetricFamily(
            "bant_sync_connection_enabled",
            "1 when the connection is enabled (scheduled), 0 when disabled; alerts on staleness join on it.",
            labels=["connection"],
        )
        for name in names:
            for status, count in sorted(store.status_counts(name).items()):
                deals.add_metric([name, status], count)
            health = self._health.connection(name, now)
            leases.add_metric([name], 1 if health.lease_holder else 0)
            degraded.add_metric([name], 1 if health.degraded else 0)
            enabled.add_metric([name], 1 if health.enabled else 0)
        yield deals
        yield leases
        yield degraded
        yield enabled
        yield from _event_families(store, names)


EVENT_COUNTERS = (
    (
        "received",
        "CRM change events received (webhooks, change data capture), duplicates and echoes included.",
    ),
    ("duplicates", "Change events dropped because their event id was already recorded."),
    ("echoes", "Change events dropped as bant-sync's own writes coming back."),
)


def _event_families(store: StateStore, names: Sequence[str]) -> Iterator[Metric]:
    """Per connection: events received, deduplicated and dropped as echoes (counters, zero for a connection
    without events), and the deals marked for re-assessment now (gauge)."""
    counters = {
        key: CounterMetricFamily(f"bant_sync_events_{key}", text, labels=["connection"])
        for key, text in EVENT_COUNTERS
    }
    dirty = GaugeMetricFamily(
        "bant_sync_events_dirty_deals",
        "Deals an event marked for re-assessment that no run has re-read yet.",
        labels=["connection"],
    )
    lag = HistogramMetricFamily(
        "bant_sync_event_lag_seconds",
        "Seconds from a CRM change (its event time) to the end of the event run that wrote its verdict back.",
        labels=["connection"],
    )
    for name in names:
        counts = store.event_counts(name)
        for key, family in counters.items():
            family.add_metric([name], counts.get(key, 0))
        dirty.add_metric([name], counts.get("dirty", 0))
        buckets, total = store.lag_histogram(name)
        lag.add_metric([name], [(_le(bound), float(count)) for bound, count in buckets], total)
    yield from counters.values()
    yield dirty
    yield lag


def _le(bound: str) -> str:
    """A bucket bound as prometheus_client writes its own ("3.0", "+Inf")."""
    return bound if bound == INF else repr(float(bound))


def metrics_registry(worker: Worker, health: HealthCheck) -> CollectorRegistry:
    """A registry holding only the store collector (no process or platform collectors: the figures are
    about the store, which several processes share)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(worker, health))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The exposition text (CONTENT_TYPE_LATEST) of `registry`."""
    return generate_latest(registry)
