"""GET /metrics: every metric's value after known runs, counters that only grow (also past the 1,000 runs the
old gauge counted), label escaping and the content type; parsed with prometheus_client's own parser."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.unit.serve_support import T0, TOKEN, TTL, FakeWorker, connection, make_worker
from worker.serve.ops_api import create_app
from worker.state import DealState, InboundEvent, Rejection, RunRecord, StateStore

AUTH = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def add_run(
    store: StateStore,
    run_id: str,
    started: datetime,
    status: str,
    seconds: float = 10.0,
    *,
    connection: str = "main",
    counts: dict[str, int] | None = None,
    api_calls: int = 0,
    rejected: int = 0,
    dry_run: bool = False,
) -> None:
    """Record one run as the pipeline does (start_run, then finish_run unless `status` is running)."""
    store.start_run(RunRecord(run_id, connection, "schedule", "incremental", started, dry_run))
    if status == "running":
        return
    finished = started + timedelta(seconds=seconds)
    refused = [Rejection(f"D{i}", "status", "INVALID", "bad value", finished) for i in range(rejected)]
    store.finish_run(run_id, finished, status, counts or {}, api_calls, None, refused)


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("main"), connection("idle"))
    yield w
    w.close()


@pytest.fixture
def client(worker: FakeWorker) -> Iterator[TestClient]:
    with TestClient(create_app(worker, TOKEN, 4096), base_url="http://127.0.0.1") as test_client:
        yield test_client


def known_runs(store: StateStore) -> None:
    add_run(
        store,
        "r1",
        T0,
        "succeeded",
        3,
        counts={"deals_written": 4, "tasks_created": 2, "tasks_completed": 1},
        api_calls=5,
        rejected=2,
    )
    add_run(store, "r2", T0 + timedelta(hours=1), "failed", 90, counts={"deals_written": 1}, api_calls=3)
    add_run(store, "r3", T0 + timedelta(hours=2), "succeeded", 4000, counts={"tasks_completed": 3})
    add_run(store, "dry", T0 + timedelta(hours=3), "succeeded", 1, counts={"deals_written": 50}, dry_run=True)
    add_run(store, "live", T0 + timedelta(hours=4), "running")


def test_every_metric_after_known_runs(client: TestClient, worker: FakeWorker) -> None:
    """Each family's values for a known history; running runs and dry runs' writes are not counted."""
    store = worker.store
    known_runs(store)
    lease = store.acquire_lease("main", "live", T0, TTL)
    states = [
        DealState("D1", "O1", "qualified", (), T0),
        DealState("D2", "O1", "unqualified", ("budget",), T0),
        DealState("D3", "O2", "unqualified", ("need",), T0),
    ]
    store.checkpoint(lease, None, [], states, {})
    s = scrape(client)
    runs = {
        status: value(s, "bant_sync_runs_total", connection="main", status=status)
        for status in ("succeeded", "failed", "stopped", "quota_stopped", "abandoned")
    }
    assert runs == {"succeeded": 3, "failed": 1, "stopped": 0, "quota_stopped": 0, "abandoned": 0}
    assert value(s, "bant_sync_deals_written_total", connection="main") == 5
    assert value(s, "bant_sync_tasks_created_total", connection="main") == 2
    assert value(s, "bant_sync_tasks_completed_total", connection="main") == 4
    assert value(s, "bant_sync_rows_rejected_total", connection="main") == 2
    assert value(s, "bant_sync_api_calls_total", connection="main", crm="fake") == 8
    bucket = {
        le: value(s, "bant_sync_run_duration_seconds_bucket", connection="main", le=le)
        for le in ("1.0", "5.0", "60.0", "120.0", "3600.0", "7200.0", "+Inf")
    }
    assert bucket == {"1.0": 1, "5.0": 2, "60.0": 2, "120.0": 3, "3600.0": 3, "7200.0": 4, "+Inf": 4}
    assert value(s, "bant_sync_run_duration_seconds_count", connection="main") == 4
    assert value(s, "bant_sync_run_duration_seconds_sum", connection="main") == 4094
    last_success = T0 + timedelta(hours=2, seconds=4000)  # r3 ends after the dry run
    assert value(s, "bant_sync_last_success_timestamp_seconds", connection="main") == last_success.timestamp()
    assert value(s, "bant_sync_last_run_finished_timestamp_seconds", connection="main") == (
        last_success.timestamp()
    )
    assert value(s, "bant_sync_deals", connection="main", status="unqualified") == 2
    assert value(s, "bant_sync_deals", connection="main", status="qualified") == 1
    assert value(s, "bant_sync_lease_held", connection="main") == 1
    assert value(s, "bant_sync_lease_held", connection="idle") == 0
    assert value(s, "bant_sync_connection_degraded", connection="main") == 0
    assert value(s, "bant_sync_connection_enabled", connection="main") == 1


def test_a_connection_without_runs_starts_every_series_at_zero(client: TestClient) -> None:
    """So that increase() sees a connection's first failure, every counter series exists from 0; the
    timestamps are absent until there is one to show."""
    s = scrape(client)
    for status in ("succeeded", "failed", "stopped", "quota_stopped", "abandoned"):
        assert value(s, "bant_sync_runs_total", connection="idle", status=status) == 0
    for name in ("deals_written", "tasks_created", "tasks_completed", "rows_rejected"):
        assert value(s, f"bant_sync_{name}_total", connection="idle") == 0
    assert value(s, "bant_sync_api_calls_total", connection="idle", crm="fake") == 0
    assert value(s, "bant_sync_run_duration_seconds_count", connection="idle") == 0
    assert value(s, "bant_sync_run_duration_seconds_bucket", connection="idle", le="+Inf") == 0
    assert not [key for key in s if key[0].startswith("bant_sync_last_") and ("connection", "idle") in key[1]]
    assert not [key for key in s if key[0] == "bant_sync_runs"], "the windowed gauge is gone"


def counters(samples: Samples) -> Samples:
    return {
        key: v
        for key, v in samples.items()
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")) and key[0].startswith("bant_sync_")
    }


def test_counters_only_grow_past_a_thousand_runs(client: TestClient, worker: FakeWorker) -> None:
    """Counters are over every stored run: after 1,200 more runs (beyond the old 1,000-run window, where
    the failures of the first runs slid out of the gauge) no counter sample went down, and the totals are
    exact."""
    store = worker.store
    for i in range(5):
        add_run(store, f"early-{i}", T0 + timedelta(seconds=i), "failed", 1, api_calls=1)
    before = counters(scrape(client))
    start = T0 + timedelta(days=1)
    for i in range(1200):
        add_run(
            store,
            f"later-{i:04d}",
            start + timedelta(minutes=i),
            "succeeded",
            30,
            counts={"deals_written": 1},
        )
    after = counters(scrape(client))
    assert set(before) <= set(after)
    assert all(after[key] >= before[key] for key in before), [k for k in before if after[k] < before[k]]
    assert value(after, "bant_sync_runs_total", connection="main", status="failed") == 5
    assert value(after, "bant_sync_runs_total", connection="main", status="succeeded") == 1200
    assert value(after, "bant_sync_deals_written_total", connection="main") == 1200
    assert value(after, "bant_sync_run_duration_seconds_count", connection="main") == 1205


def test_label_values_are_escaped(tmp_path: Path) -> None:
    """A connection name with a quote, a backslash and a newline is escaped in the exposition and parses
    back to itself."""
    odd = 'we"ird\\name\nx'
    worker = make_worker(tmp_path, connection(odd))
    try:
        add_run(worker.store, "r1", T0, "failed", connection=odd)
        with TestClient(create_app(worker, TOKEN, 4096), base_url="http://127.0.0.1") as test_client:
            text = test_client.get("/metrics", headers=AUTH).text
            samples = scrape(test_client)
    finally:
        worker.close()
    assert 'connection="we\\"ird\\\\name\\nx"' in text
    assert value(samples, "bant_sync_runs_total", connection=odd, status="failed") == 1


def test_content_type_and_auth(client: TestClient) -> None:
    """The answer carries prometheus_client's CONTENT_TYPE_LATEST; without the token it is a 401."""
    response = client.get("/metrics", headers=AUTH)
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    types = {line.split()[2]: line.split()[3] for line in response.text.splitlines() if line[:6] == "# TYPE"}
    assert types.get("bant_sync_runs_total", types.get("bant_sync_runs")) == "counter"
    assert types["bant_sync_deals"] == "gauge"
    assert types["bant_sync_run_duration_seconds"] == "histogram"
    assert client.get("/metrics").status_code == 401


def test_processes_on_one_store_agree(tmp_path: Path) -> None:
    """Two apps (two `serve` processes) over one store answer the same counters: nothing is kept in memory."""
    first = make_worker(tmp_path, connection("main"))
    second = make_worker(tmp_path, connection("main"))
    try:
        add_run(first.store, "r1", T0, "succeeded", counts={"deals_written": 3})
        with (
            TestClient(create_app(first, TOKEN, 4096), base_url="http://127.0.0.1") as one,
            TestClient(create_app(second, TOKEN, 4096), base_url="http://127.0.0.1") as two,
        ):
            assert counters(scrape(one)) == counters(scrape(two))
            assert value(scrape(two), "bant_sync_deals_written_total", connection="main") == 3
    finally:
        first.close()
        second.close()


def test_degraded_gauge_follows_health(tmp_path: Path) -> None:
    """bant_sync_connection_degraded is 1 exactly when /health calls the connection degraded."""
    worker = make_worker(tmp_path, connection("main"))
    worker.settings = dataclasses.replace(
        worker.settings, ops_api=dataclasses.replace(worker.settings.ops_api, degraded_after_failed_runs=2)
    )
    try:
        with TestClient(create_app(worker, TOKEN, 4096), base_url="http://127.0.0.1") as test_client:
            for i in range(2):
                add_run(worker.store, f"f{i}", T0 - timedelta(minutes=10 - i), "failed")
            assert value(scrape(test_client), "bant_sync_connection_degraded", connection="main") == 1
            assert test_client.get("/health").json()["connections"]["main"]["status"] == "degraded"
    finally:
        worker.close()


def test_event_counters_and_dirty_deals(client: TestClient, worker: FakeWorker) -> None:
    """Webhook events show as counters per connection (received, duplicates, echoes; zero before any) and
    the deals they marked, not yet re-read, as a gauge."""
    before = scrape(client)
    for name in ("received", "duplicates", "echoes"):
        assert value(before, f"bant_sync_events_{name}_total", connection="idle") == 0
    assert value(before, "bant_sync_events_dirty_deals", connection="idle") == 0
    events = [
        InboundEvent("e1", "D1", T0),
        InboundEvent("e2", "D2", T0),
        InboundEvent("e3", "D3", T0, echo=True),
    ]
    worker.store.record_events("idle", events, T0)
    worker.store.record_events("idle", events[:1], T0 + timedelta(seconds=5))
    after = scrape(client)
    assert value(after, "bant_sync_events_received_total", connection="idle") == 4
    assert value(after, "bant_sync_events_duplicates_total", connection="idle") == 1
    assert value(after, "bant_sync_events_echoes_total", connection="idle") == 1
    assert value(after, "bant_sync_events_dirty_deals", connection="idle") == 2


def test_event_lag_is_a_histogram_per_connection(client: TestClient, worker: FakeWorker) -> None:
    """The lag from a CRM change to its write-back: empty before any event run, then cumulative buckets,
    a count and a sum (seconds) that Prometheus' histogram_quantile reads."""
    before = scrape(client)
    assert value(before, "bant_sync_event_lag_seconds_count", connection="idle") == 0
    worker.store.record_events("idle", [InboundEvent("e1", "D1", T0), InboundEvent("e2", "D2", T0)], T0)
    done = T0 + timedelta(seconds=4)
    worker.store.clear_dirty("idle", ["D1"], marked_before=done, reassessed_at=done)
    worker.store.clear_dirty("idle", ["D2"], marked_before=done, reassessed_at=done + timedelta(seconds=8))
    after = scrape(client)
    assert value(after, "bant_sync_event_lag_seconds_bucket", connection="idle", le="3.0") == 0
    assert value(after, "bant_sync_event_lag_seconds_bucket", connection="idle", le="5.0") == 1
    assert value(after, "bant_sync_event_lag_seconds_bucket", connection="idle", le="30.0") == 2
    assert value(after, "bant_sync_event_lag_seconds_bucket", connection="idle", le="+Inf") == 2
    assert value(after, "bant_sync_event_lag_seconds_count", connection="idle") == 2
    assert value(after, "bant_sync_event_lag_seconds_sum", connection="idle") == 16.0
