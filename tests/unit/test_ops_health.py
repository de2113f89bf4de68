"""GET /health: `degraded` per connection after N failed runs in a row or too long without a success,
recovery, the never-ran grace from the service's start, and nothing secret in the unauthenticated answer.
Time is the worker's injected clock; nothing sleeps."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from connectors.errors import AuthenticationError
from tests.unit.serve_support import T0, TOKEN, FakeWorker, connection, make_worker, reset_structlog
from tests.unit.test_ops_metrics import add_run
from worker.serve.ops_api import create_app
from worker.serve.ops_health import HealthCheck
from worker.serve.scheduler import run_scheduled
from worker.state import RunRecord

default_structlog = pytest.fixture(autouse=True)(reset_structlog)
SECRET_ERROR = "CRM said: invalid session token 00Dxx!AQ4AQH0dMHZfz972Szmpsb"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def worker(tmp_path: Path, clock: Clock) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("main"), connection("other"), connection("off", enabled=False))
    w.clock = clock
    w.settings = dataclasses.replace(
        w.settings,
        ops_api=dataclasses.replace(
            w.settings.ops_api, degraded_after_failed_runs=3, degraded_after_minutes=60
        ),
    )
    yield w
    w.close()


@pytest.fixture
def client(worker: FakeWorker) -> Iterator[TestClient]:
    """The app is built at T0: the service's start for connections that never succeeded."""
    with TestClient(create_app(worker, TOKEN, 4096), base_url="http://127.0.0.1") as test_client:
        yield test_client


def fail(worker: FakeWorker, run_id: str, at: datetime, connection: str = "main") -> None:
    worker.store.start_run(RunRecord(run_id, connection, "schedule", "incremental", at))
    worker.store.finish_run(run_id, at + timedelta(seconds=5), "failed", {}, 1, SECRET_ERROR)


def health(client: TestClient) -> dict[str, object]:
    response = client.get("/health")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def main(body: dict[str, object]) -> dict[str, object]:
    connections = body["connections"]
    assert isinstance(connections, dict)
    found: dict[str, object] = connections["main"]
    return found


def test_failed_runs_in_a_row_degrade_then_a_success_recovers(
    client: TestClient, worker: FakeWorker, clock: Clock
) -> None:
    """Two failures: ok; the third in a row: degraded, naming the streak, overall degraded, still 200;
    one succeeded run: ok again."""
    add_run(worker.store, "ok-1", T0, "succeeded", 5)
    for i in range(2):
        fail(worker, f"f{i}", T0 + timedelta(minutes=1 + i))
    clock.now = T0 + timedelta(minutes=5)
    body = health(client)
    assert (body["status"], main(body)["status"], main(body)["failed_in_a_row"]) == ("ok", "ok", 2)
    fail(worker, "f2", T0 + timedelta(minutes=3))
    body = health(client)
    assert body["status"] == "degraded"
    assert main(body)["status"] == "degraded"
    assert main(body)["failed_in_a_row"] == 3
    assert main(body)["last_run_status"] == "failed"
    assert "latest 3 runs failed" in str(main(body)["reason"])
    assert body["connections"]["other"]["status"] == "ok"  # type: ignore[index]
    add_run(worker.store, "ok-2", T0 + timedelta(minutes=4), "succeeded", 5)
    body = health(client)
    assert (body["status"], main(body)["status"], main(body)["reason"]) == ("ok", "ok", None)
    assert main(body)["last_success_at"] == (T0 + timedelta(minutes=4, seconds=5)).isoformat()


def test_a_stopped_run_breaks_the_streak_and_a_running_one_does_not_count(
    client: TestClient, worker: FakeWorker, clock: Clock
) -> None:
    """Failures around a stopped run are not "in a row"; a run still running is not judged."""
    add_run(worker.store, "ok", T0, "succeeded", 1)
    fail(worker, "f1", T0 + timedelta(minutes=1))
    add_run(worker.store, "stop", T0 + timedelta(minutes=2), "stopped", 1)
    fail(worker, "f2", T0 + timedelta(minutes=3))
    fail(worker, "f3", T0 + timedelta(minutes=4))
    add_run(worker.store, "live", T0 + timedelta(minutes=5), "running")
    clock.now = T0 + timedelta(minutes=6)
    assert (main(health(client))["status"], main(health(client))["failed_in_a_row"]) == ("ok", 2)
    fail(worker, "f4", T0 + timedelta(minutes=4, seconds=30))
    assert main(health(client))["status"] == "degraded"


def test_stale_success_degrades_and_a_fresh_one_recovers(
    client: TestClient, worker: FakeWorker, clock: Clock
) -> None:
    """No success for longer than degraded_after_minutes: degraded saying for how long; at the limit it
    is still ok; a new success recovers."""
    add_run(worker.store, "ok-1", T0, "succeeded", 60)
    clock.now = T0 + timedelta(minutes=61)  # 60 min after the success finished
    assert main(health(client))["status"] == "ok"
    clock.now = T0 + timedelta(minutes=61, seconds=1)
    body = main(health(client))
    assert body["status"] == "degraded"
    assert body["reason"] == "no successful run for 1 h (degraded after 1 h)"
    add_run(worker.store, "ok-2", clock.now, "succeeded", 1)
    clock.now += timedelta(seconds=2)
    assert main(health(client))["status"] == "ok"


def test_a_connection_that_never_ran_has_the_limit_from_the_service_start(
    client: TestClient, worker: FakeWorker, clock: Clock
) -> None:
    """Never succeeded: ok until degraded_after_minutes after the app was built, then degraded; a
    disabled connection is never judged."""
    clock.now = T0 + timedelta(minutes=60)
    body = health(client)
    assert body["status"] == "ok"
    clock.now = T0 + timedelta(minutes=90)
    body = health(client)
    assert body["status"] == "degraded"
    assert "since the service started 1 h 30 min ago" in str(main(body)["reason"])
    assert body["connections"]["off"]["status"] == "ok"  # type: ignore[index]
    assert body["connections"]["off"]["enabled"] is False  # type: ignore[index]


def test_zero_minutes_never_degrades_on_age(worker: FakeWorker, clock: Clock) -> None:
    """degraded_after_minutes = 0: age alone never degrades; failures still do."""
    worker.settings = dataclasses.replace(
        worker.settings, ops_api=dataclasses.replace(worker.settings.ops_api, degraded_after_minutes=0)
    )
    check = HealthCheck(worker, started_at=T0)
    add_run(worker.store, "ok", T0, "succeeded", 1)
    far = T0 + timedelta(days=400)
    assert check.connection("main", far).status == "ok"
    for i in range(3):
        fail(worker, f"f{i}", T0 + timedelta(minutes=1 + i))
    assert check.connection("main", far).status == "degraded"
    assert check.connection("main", far).reason == (
        "the latest 3 runs failed: see GET /runs?connection=main for their errors"
    )


def test_health_needs_no_token_and_leaks_no_error_text(
    client: TestClient, worker: FakeWorker, clock: Clock
) -> None:
    """/health answers without a token, degraded or not, and never carries a run's error message."""
    for i in range(3):
        fail(worker, f"f{i}", T0 + timedelta(minutes=i))
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert "00Dxx" not in response.text and "session token" not in response.text
    assert TOKEN not in response.text


def test_scheduled_runs_failing_degrade_and_log_at_error_then_recover(
    client: TestClient, worker: FakeWorker, clock: Clock
) -> None:
    """Through the real pipeline and scheduler: three failing scheduled runs (the CRM refuses the login)
    each log at ERROR with the reason and degrade the connection; one good run recovers it."""
    worker.fail = AuthenticationError("the CRM refused the credentials: the integration user is frozen")
    with capture_logs() as logs:
        for minute in (1, 16, 31):
            clock.now = T0 + timedelta(minutes=minute)
            summary = run_scheduled(worker, "main", "incremental")
            assert summary is not None and summary.status == "failed"
    failed = [e for e in logs if e["event"] == "scheduled run finished"]
    assert [(e["log_level"], e["status"]) for e in failed] == [("error", "failed")] * 3
    assert all("integration user is frozen" in e["error"] for e in failed)
    assert main(health(client))["status"] == "degraded"
    worker.fail = None
    clock.now = T0 + timedelta(minutes=46)
    assert run_scheduled(worker, "main", "incremental") is not None
    body = main(health(client))
    assert (body["status"], body["last_run_status"], body["failed_in_a_row"]) == ("ok", "succeeded", 0)
