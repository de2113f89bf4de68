"""Run-level log lines: a failed run and a failed scheduled run log at ERROR, a clean one at INFO."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from connectors.errors import QuotaExhaustedError, SchemaDriftError
from tests.unit.serve_support import FakeWorker, connection, make_worker, reset_structlog
from worker.serve.scheduler import run_scheduled
from worker.sync.run_model import RunRequest

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("sf"))
    yield w
    w.close()


def test_a_succeeded_run_logs_run_finished_at_info(worker: FakeWorker) -> None:
    """A run with nothing to do finishes "succeeded" and logs "run finished" at info with its context."""
    with capture_logs() as logs:
        summary = worker.run(RunRequest("sf"))
    (line,) = [e for e in logs if e["event"] == "run finished"]
    assert (summary.status, line["log_level"], line["status"]) == ("succeeded", "info", "succeeded")


def test_a_failed_run_logs_run_finished_at_error(worker: FakeWorker) -> None:
    """Schema drift at preflight fails the run: "run finished" at error, naming the drifted field."""
    worker.fail = SchemaDriftError("the Opportunity field Budget__c is missing", fields=("Budget__c",))
    with capture_logs() as logs:
        summary = worker.run(RunRequest("sf"))
    (line,) = [e for e in logs if e["event"] == "run finished"]
    assert summary.status == "failed"
    assert (line["log_level"], line["status"]) == ("error", "failed")
    assert "Budget__c" in line["error"]


def test_a_quota_stopped_run_logs_run_finished_at_warning(worker: FakeWorker) -> None:
    """A run stopped by the API quota logs "run finished" at warning."""
    worker.fail = QuotaExhaustedError("quota nearly spent", used=90, limit=100)
    with capture_logs() as logs:
        summary = worker.run(RunRequest("sf"))
    (line,) = [e for e in logs if e["event"] == "run finished"]
    assert (summary.status, line["log_level"]) == ("quota_stopped", "warning")


def test_a_failed_scheduled_run_logs_at_error(worker: FakeWorker) -> None:
    """The scheduler's "scheduled run finished" line of a failed run is at error; of a clean one at info."""
    with capture_logs() as logs:
        run_scheduled(worker, "sf", "incremental")
        worker.fail = SchemaDriftError("the Opportunity field Need__c is missing", fields=("Need__c",))
        run_scheduled(worker, "sf", "incremental")
    ok, failed = [e for e in logs if e["event"] == "scheduled run finished"]
    assert (ok["status"], ok["log_level"]) == ("succeeded", "info")
    assert (failed["status"], failed["log_level"]) == ("failed", "error")
