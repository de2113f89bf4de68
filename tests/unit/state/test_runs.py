"""Run history: start, finish, list, get, and abandoned runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

from worker.state import DuplicateRunError, RunRecord, StateStore, UnknownRecordError

from .conftest import T0

TTL = timedelta(minutes=10)


def _record(run_id: str, minute: int, connection: str = "sf") -> RunRecord:
    return RunRecord(run_id, connection, "schedule", "incremental", T0 + timedelta(minutes=minute))


def test_started_run_reads_back_as_running(store: StateStore) -> None:
    """A started run is stored with every field and status "running"."""
    record = RunRecord("r1", "sf", "http", "deal", T0, True, "006A")
    store.start_run(record)
    got = store.get_run("r1")
    assert got == record
    assert got is not None and got.status == "running" and got.finished_at is None and got.counts == {}


def test_finish_run_stores_outcome(store: StateStore) -> None:
    """finish_run records end time, status, counts, API calls and error."""
    store.start_run(_record("r1", 0))
    store.finish_run(
        "r1", T0 + TTL, "failed", {"read": 10, "rejected": 1}, 7, "CRM unreachable: check network"
    )
    got = store.get_run("r1")
    assert got is not None
    assert (got.finished_at, got.status, got.counts, got.api_calls, got.error) == (
        T0 + TTL,
        "failed",
        {"read": 10, "rejected": 1},
        7,
        "CRM unreachable: check network",
    )


def test_unknown_run_reads_none_and_cannot_finish(store: StateStore) -> None:
    """get_run of an unknown id is None; finishing it raises UnknownRecordError."""
    assert store.get_run("nope") is None
    with pytest.raises(UnknownRecordError, match="start_run"):
        store.finish_run("nope", T0, "succeeded", {}, 0, None)


def test_run_id_is_unique(store: StateStore) -> None:
    """Starting the same run id twice raises DuplicateRunError."""
    store.start_run(_record("r1", 0))
    with pytest.raises(DuplicateRunError):
        store.start_run(_record("r1", 1))


@pytest.mark.parametrize(
    ("field", "value"),
    [("trigger", "cron"), ("mode", "partial"), ("status", "done")],
    ids=["trigger", "mode", "status"],
)
def test_record_values_are_validated(field: str, value: str) -> None:
    """RunRecord refuses unknown trigger, mode and status values."""
    args: dict[str, object] = {"trigger": "cli", "mode": "full", field: value}
    with pytest.raises(ValueError, match=field):
        RunRecord("r", "sf", started_at=T0, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["running", "abandoned", "ok"], ids=["running", "abandoned", "unknown"])
def test_finish_needs_a_final_status(store: StateStore, status: str) -> None:
    """finish_run only accepts succeeded/failed/stopped/quota_stopped."""
    store.start_run(_record("r1", 0))
    with pytest.raises(ValueError, match="status"):
        store.finish_run("r1", T0, status, {}, 0, None)


def test_list_runs_newest_first_with_filter_and_limit(store: StateStore) -> None:
    """list_runs returns the newest runs first, optionally of one connection, at most `limit`."""
    for minute, connection in enumerate(["sf", "hubspot", "sf", "hubspot", "sf"]):
        store.start_run(_record(f"r{minute}", minute, connection))
    assert [r.run_id for r in store.list_runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.list_runs("sf")] == ["r4", "r2", "r0"]
    assert [r.run_id for r in store.list_runs("hubspot", limit=1)] == ["r3"]
    assert store.list_runs("other") == []


def test_mark_abandoned_only_touches_runs_without_a_live_lease(store: StateStore) -> None:
    """Running runs without a live lease (never held, or expired) become abandoned; the live holder
    stays. (A run whose lease another run took over was abandoned by that takeover: see test_lease.)"""
    for run_id, minute in (("dead", 0), ("live", 30), ("done", 1)):
        store.start_run(_record(run_id, minute))
    store.start_run(_record("other-conn", 0, "hubspot"))
    store.finish_run("done", T0 + TTL, "succeeded", {}, 1, None)
    store.acquire_lease("sf", "live", T0 + 3 * TTL, TTL)
    assert store.mark_abandoned("sf", T0 + 3 * TTL + timedelta(minutes=1)) == ["dead"]
    statuses = {r.run_id: r.status for r in store.list_runs()}
    assert statuses == {"dead": "abandoned", "live": "running", "done": "succeeded", "other-conn": "running"}
    assert store.mark_abandoned("sf", T0 + 5 * TTL) == ["live"]


def test_abandoned_run_can_still_finish(store: StateStore) -> None:
    """A run wrongly presumed dead that comes back can still record how it ended."""
    store.start_run(_record("r1", 0))
    assert store.mark_abandoned("sf", T0) == ["r1"]
    store.finish_run("r1", T0 + TTL, "succeeded", {"read": 1}, 2, None)
    got = store.get_run("r1")
    assert got is not None and got.status == "succeeded"
