"""Aggregates over the run history (metrics, health), grouped in SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from worker.state import RunRecord, StateStore
from worker.state.run_stats import DurationStats

from .conftest import T0


def _run(
    store: StateStore,
    run_id: str,
    minute: int,
    status: str,
    seconds: float,
    *,
    connection: str = "sf",
    counts: dict[str, int] | None = None,
    api_calls: int = 0,
    dry_run: bool = False,
) -> None:
    started = T0 + timedelta(minutes=minute)
    store.start_run(RunRecord(run_id, connection, "schedule", "incremental", started, dry_run))
    if status != "running":
        finished = started + timedelta(seconds=seconds)
        store.finish_run(run_id, finished, status, counts or {}, api_calls, None)


def test_totals_sum_counts_by_connection_and_status(store: StateStore) -> None:
    """Runs are counted by status; API calls summed; dry runs' writes and running runs left out."""
    _run(store, "a", 0, "succeeded", 10, counts={"deals_written": 3, "tasks_created": 2}, api_calls=5)
    _run(store, "b", 1, "succeeded", 20, counts={"deals_written": 4, "tasks_completed": 1}, api_calls=7)
    _run(store, "c", 2, "failed", 1, counts={"deals_written": 1}, api_calls=1)
    _run(store, "d", 3, "succeeded", 5, counts={"deals_written": 100, "tasks_created": 50}, dry_run=True)
    _run(store, "e", 4, "running", 0)
    _run(store, "f", 5, "succeeded", 2, connection="hs", counts={"tasks_created": 9}, api_calls=2)
    got = {(t.connection, t.status): t for t in store.run_totals()}
    assert set(got) == {("sf", "succeeded"), ("sf", "failed"), ("hs", "succeeded")}
    ok = got[("sf", "succeeded")]
    assert (ok.runs, ok.api_calls) == (3, 12)
    assert ok.written == {"deals_written": 7, "tasks_created": 2, "tasks_completed": 1}
    assert got[("sf", "failed")].written == {"deals_written": 1, "tasks_created": 0, "tasks_completed": 0}
    assert got[("hs", "succeeded")].written["tasks_created"] == 9


def test_durations_fall_in_cumulative_buckets(store: StateStore) -> None:
    """A duration equal to a bound counts in it; buckets are cumulative; running runs are left out."""
    for i, seconds in enumerate((0.5, 60, 61, 3600)):
        _run(store, f"r{i}", i * 100, "succeeded", seconds)
    _run(store, "live", 999, "running", 0)
    got = store.run_durations([1, 60, 120, 7200])
    assert got == {"sf": DurationStats(4, 3721.5, (1, 2, 3, 4))}


def test_times_and_outcomes(store: StateStore) -> None:
    """The latest finish and latest success per connection; outcomes newest first without running runs."""
    _run(store, "a", 0, "succeeded", 10)
    _run(store, "b", 10, "failed", 10)
    _run(store, "c", 20, "running", 0)
    times = store.run_times()["sf"]
    assert times.last_finished == T0 + timedelta(minutes=10, seconds=10)
    assert times.last_succeeded == T0 + timedelta(seconds=10)
    assert store.last_succeeded("sf") == T0 + timedelta(seconds=10)
    assert store.last_succeeded("hs") is None
    assert [o.run_id for o in store.latest_outcomes("sf", 5)] == ["b", "a"]
    assert [o.status for o in store.latest_outcomes("sf", 1)] == ["failed"]


def test_many_runs_aggregate(store: StateStore) -> None:
    """Two thousand runs: the totals are over all of them, not a window."""
    for i in range(2000):
        status = "failed" if i % 4 == 0 else "succeeded"
        _run(store, f"r{i:04d}", i, status, 30, counts={"deals_written": 1}, api_calls=2)
    got = {t.status: t for t in store.run_totals()}
    assert (got["failed"].runs, got["succeeded"].runs) == (500, 1500)
    assert got["succeeded"].written["deals_written"] == 1500
    assert got["failed"].api_calls == 1000
    assert store.run_durations([30])["sf"].at_most == (2000,)
