"""The one run report: `sync --json`, `status --json`, GET /runs and GET /runs/{id} all use RunSummary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.unit.serve_support import T0, TOKEN, FakeWorker, make_worker, reset_structlog
from worker.cli.status import connection_status
from worker.serve.ops_api import create_app, run_json
from worker.state import Rejection, RunRecord
from worker.state.model import RunMode, RunStatus, Trigger
from worker.sync.run_model import RunRequest, RunSummary, flat_counts, grouped_counts

AUTH = {"Authorization": f"Bearer {TOKEN}"}
REPORT_KEYS = {
    "run_id",
    "connection",
    "trigger",
    "mode",
    "scope",
    "status",
    "dry_run",
    "deals",
    "tasks",
    "statuses",
    "api_calls",
    "started_at",
    "finished_at",
    "error",
}

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path)
    yield w
    w.close()


def as_sent(body: dict[str, Any]) -> Any:
    """`body` as a client reads it back (enum members become their strings)."""
    return json.loads(json.dumps(body))


def finished_summary() -> RunSummary:
    return RunSummary(
        "r-1",
        "main",
        RunMode.OWNER,
        RunStatus.SUCCEEDED,
        False,
        T0.isoformat(),
        T0.isoformat(),
        deals={"read": 3, "assessed": 3, "written": 2, "unchanged": 1, "rejected": 1, "would_write": 0},
        tasks={"created": 1, "reopened": 1},
        statuses={"qualified": 1, "unqualified": 2},
        api_calls=7,
        rejections=[{"deal_id": "D1", "operation": "status", "code": "X", "message": "no"}],
        trigger=Trigger.HTTP,
        scope="U-1",
    )


def store_summary(worker: FakeWorker, summary: RunSummary) -> None:
    record = RunRecord(
        summary.run_id, summary.connection, summary.trigger, summary.mode, T0, scope=summary.scope
    )
    worker.store.start_run(record)
    refused = [
        Rejection(r["deal_id"] or "", r["operation"] or "", r["code"], r["message"], T0)
        for r in summary.rejections
    ]
    worker.store.finish_run(
        summary.run_id, T0, summary.status, summary.stored_counts(), summary.api_calls, summary.error, refused
    )


def test_sync_json_of_a_run_is_what_the_api_returns_for_it(worker: FakeWorker) -> None:
    """A run's summary (what `sync --json` prints) equals GET /runs/{id} for it, key for key."""
    summary = worker.run(RunRequest("main", RunMode.FULL))
    with TestClient(create_app(worker, TOKEN, 256), base_url="http://127.0.0.1") as client:
        detail = client.get(f"/runs/{summary.run_id}", headers=AUTH).json()
        listed = client.get("/runs", headers=AUTH).json()["runs"]
    assert detail == as_sent(summary.as_json())
    assert set(detail) == REPORT_KEYS | {"rejections"} and "statuses" in detail
    assert listed == [{k: v for k, v in detail.items() if k != "rejections"}]


def test_a_stored_run_reports_every_counter_and_status_as_it_ran(worker: FakeWorker) -> None:
    """Every counter group (deals, tasks, statuses) survives the store: stored report == live report."""
    summary = finished_summary()
    store_summary(worker, summary)
    record = worker.store.get_run("r-1")
    assert record is not None
    stored = run_json(record, worker.store.run_rejections("r-1"))
    assert as_sent(stored) == as_sent(summary.as_json())
    assert stored["statuses"] == {"qualified": 1, "unqualified": 2}


def test_status_json_lists_runs_with_the_same_report(worker: FakeWorker) -> None:
    """`status --json` runs are the run report (without rejected rows) plus the stored flat `counts`."""
    summary = finished_summary()
    store_summary(worker, summary)
    [run] = connection_status(worker.store, "main", 5)["runs"]
    expected = as_sent(summary.as_json(with_rejections=False))
    assert as_sent(run) == {**expected, "counts": summary.stored_counts()}


def test_counters_are_flattened_and_regrouped_by_one_pair_of_functions() -> None:
    """grouped_counts undoes flat_counts, names with underscores included; unknown keys are dropped."""
    deals, tasks, statuses = {"would_write": 2, "read": 1}, {"created": 1}, {"partially_qualified": 4}
    flat = flat_counts(deals, tasks, statuses)
    assert flat == {
        "deals_would_write": 2,
        "deals_read": 1,
        "tasks_created": 1,
        "statuses_partially_qualified": 4,
    }
    assert grouped_counts({**flat, "other": 9}) == {"deals": deals, "tasks": tasks, "statuses": statuses}


def test_a_dry_run_report_has_planned_only_when_it_knows_them() -> None:
    """A live dry run lists `planned`; a stored one (its plan is not stored) leaves the key out."""
    live = RunSummary("r", "main", RunMode.FULL, RunStatus.SUCCEEDED, True, T0.isoformat())
    assert live.as_json()["planned"] == []
    record = RunRecord("r", "main", "cli", "full", T0, dry_run=True, status="succeeded")
    assert "planned" not in RunSummary.of_record(record).as_json()
