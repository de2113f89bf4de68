"""The serve schedule: jobs per connection, and how the job body handles busy leases and crashes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from structlog.testing import capture_logs

from tests.unit.serve_support import T0, TTL, FakeWorker, connection, make_worker, reset_structlog
from worker.errors import ConfigError
from worker.serve.scheduler import LEASE_RETRY_SECONDS, build_scheduler, run_scheduled
from worker.state.leases import this_process
from worker.state.model import Holder

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(
        tmp_path,
        connection(
            "sf", incremental_every_minutes=10, full_sweep_cron="30 1 * * 1-5", misfire_grace_seconds=120
        ),
        connection(
            "hs", incremental_every_minutes=45, full_sweep_cron="0 3 * * *", misfire_grace_seconds=900
        ),
        connection("off", enabled=False),
        timezone="Europe/Paris",
    )
    yield w
    w.close()


def fields(trigger: object) -> dict[str, str]:
    return {field.name: str(field) for field in trigger.fields}  # type: ignore[attr-defined]


def test_three_jobs_per_enabled_connection(worker: FakeWorker) -> None:
    """Each enabled connection gets a catch-up, an incremental and a full job: max_instances=1, coalesce,
    its grace."""
    scheduler = build_scheduler(worker, now=T0)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {
        "sf:catch-up",
        "sf:incremental",
        "sf:full",
        "hs:catch-up",
        "hs:incremental",
        "hs:full",
    }
    for job_id, job in jobs.items():
        name = job_id.split(":")[0]
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == worker.settings.connections[name].schedule.misfire_grace_seconds
        assert job.args == (worker, name, "full" if job_id.endswith(":full") else "incremental")
    assert str(scheduler.timezone) == "UTC"


@pytest.mark.parametrize(
    ("name", "minutes"), [pytest.param("sf", 10, id="sf"), pytest.param("hs", 45, id="hs")]
)
def test_a_catch_up_fires_at_start_then_the_incremental_interval(
    worker: FakeWorker, name: str, minutes: int
) -> None:
    """A restart catches up at once (waiting up to the lease TTL for a busy lease); the incremental job
    then runs every N minutes."""
    scheduler = build_scheduler(worker, now=T0)
    catch_up = scheduler.get_job(f"{name}:catch-up")
    assert catch_up.trigger.run_date == T0
    assert catch_up.kwargs == {"lease_wait_seconds": float(worker.settings.run.lease_ttl_seconds)}
    job = scheduler.get_job(f"{name}:incremental")
    assert job.trigger.interval == timedelta(minutes=minutes)
    assert job.next_run_time == T0 + timedelta(minutes=minutes)
    assert job.kwargs == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "sf", {"minute": "30", "hour": "1", "day": "*", "month": "*", "day_of_week": "1-5"}, id="sf"
        ),
        pytest.param(
            "hs", {"minute": "0", "hour": "3", "day": "*", "month": "*", "day_of_week": "*"}, id="hs"
        ),
    ],
)
def test_full_sweep_cron_fields(worker: FakeWorker, name: str, expected: dict[str, str]) -> None:
    """The full sweep follows the crontab expression, read in the rules time zone, and waits for the lease."""
    job = build_scheduler(worker, now=T0).get_job(f"{name}:full")
    assert {k: v for k, v in fields(job.trigger).items() if k in expected} == expected
    assert str(job.trigger.timezone) == "Europe/Paris"
    grace = worker.settings.connections[name].schedule.misfire_grace_seconds
    assert job.kwargs == {"lease_wait_seconds": float(grace)}


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        pytest.param({"full_sweep_cron": "0 2 * *"}, "full_sweep_cron", id="four-fields"),
        pytest.param({"full_sweep_cron": "61 2 * * *"}, "full_sweep_cron", id="minute-out-of-range"),
        pytest.param({"incremental_every_minutes": 0}, "incremental_every_minutes", id="zero-interval"),
        pytest.param({"misfire_grace_seconds": 0}, "misfire_grace_seconds", id="zero-grace"),
    ],
)
def test_bad_schedule_is_a_config_error(tmp_path: Path, schedule: dict[str, object], key: str) -> None:
    """A bad schedule is a ConfigError naming the connection's key, before anything starts."""
    worker = make_worker(tmp_path, connection("main", **schedule))
    try:
        with pytest.raises(ConfigError, match=f"connections.main.{key}"):
            build_scheduler(worker, now=T0)
    finally:
        worker.close()


def test_job_runs_with_schedule_trigger(worker: FakeWorker) -> None:
    """The job body runs one sync recorded with trigger "schedule" and returns its summary."""
    summary = run_scheduled(worker, "sf", "full")
    assert summary is not None and summary.status == "succeeded"
    (record,) = worker.store.list_runs("sf")
    assert (record.trigger, record.mode, record.run_id) == ("schedule", "full", summary.run_id)


def test_busy_lease_is_skipped_and_logged(worker: FakeWorker) -> None:
    """An incremental run that finds the lease held logs "skipped: run X holds the lease" and returns."""
    worker.store.acquire_lease("sf", "holder-9", T0, TTL)
    with capture_logs() as logs:
        assert run_scheduled(worker, "sf", "incremental") is None
    (event,) = [e for e in logs if "skipped" in e["event"]]
    assert event["event"] == "scheduled run skipped: run holder-9 holds the lease"
    assert event["log_level"] == "info"
    assert worker.store.list_runs("sf") == []


def test_full_sweep_waits_for_the_lease_within_grace(worker: FakeWorker) -> None:
    """A full sweep retries a busy lease every LEASE_RETRY_SECONDS and runs once the holder releases it."""
    lease = worker.store.acquire_lease("sf", "holder-10", T0, TTL)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        if len(waits) == 2:
            worker.store.release_lease(lease)
        return False

    summary = run_scheduled(worker, "sf", "full", lease_wait_seconds=120, wait=wait)
    assert waits == [LEASE_RETRY_SECONDS, LEASE_RETRY_SECONDS]
    assert summary is not None and summary.mode == "full"


def test_full_sweep_gives_up_after_grace(worker: FakeWorker) -> None:
    """A lease held past the grace time skips the sweep after grace / LEASE_RETRY_SECONDS waits."""
    worker.store.acquire_lease("sf", "holder-11", T0, TTL)
    waits: list[float] = []
    result = run_scheduled(
        worker, "sf", "full", lease_wait_seconds=90, wait=lambda s: waits.append(s) or False
    )
    assert result is None and len(waits) == 3
    assert worker.store.list_runs("sf") == []


def test_stop_during_lease_wait_ends_the_job(worker: FakeWorker) -> None:
    """SIGTERM (the wait returning True) while a sweep waits for the lease ends the job without a run."""
    worker.store.acquire_lease("sf", "holder-12", T0, TTL)
    assert run_scheduled(worker, "sf", "full", lease_wait_seconds=900, wait=lambda s: True) is None
    assert worker.store.list_runs("sf") == []


def test_crash_in_a_run_does_not_propagate(worker: FakeWorker) -> None:
    """An unexpected exception inside a run is logged with its connection and swallowed; the lease is free."""
    worker.fail = RuntimeError("boom")
    with capture_logs() as logs:
        assert run_scheduled(worker, "hs", "incremental") is None
    assert any(e["log_level"] == "error" and e.get("connection") == "hs" for e in logs)
    crashed = next(e for e in logs if e["event"].startswith("scheduled run crashed"))
    assert (crashed["log_level"], crashed["error"], crashed["status"]) == (
        "error",
        "RuntimeError: boom",
        "failed",
    )
    assert worker.store.lease_holder("hs", T0) is None
    assert [r.status for r in worker.store.list_runs("hs")] == ["failed"]


def test_stopped_worker_starts_no_run(worker: FakeWorker) -> None:
    """Once stop is set, a firing job starts nothing."""
    worker.stop.set()
    assert run_scheduled(worker, "sf", "incremental") is None
    assert worker.store.list_runs() == []


def test_started_scheduler_fires_the_catch_up(tmp_path: Path) -> None:
    """A started BackgroundScheduler runs the catch-up job at start, through APScheduler itself."""
    worker = make_worker(tmp_path, connection("main"))
    done = threading.Event()
    events: list[JobExecutionEvent] = []

    def listener(event: JobExecutionEvent) -> None:
        events.append(event)
        done.set()

    scheduler = build_scheduler(worker, now=datetime.now(UTC))  # APScheduler fires on the real clock
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        assert done.wait(10)
    finally:
        scheduler.shutdown(wait=True)
    assert [(e.job_id, e.exception) for e in events] == [("main:catch-up", None)]
    assert events[0].retval.status == "succeeded"
    assert [r.trigger for r in worker.store.list_runs()] == ["schedule"]
    worker.close()


def test_misfire_grace_is_never_shorter_than_the_lease_ttl(tmp_path: Path) -> None:
    """A grace shorter than the lease TTL is raised to it, for the jobs and the sweep's lease wait: a
    sweep that waits out a dead run's lease is not dropped."""
    worker = make_worker(tmp_path, connection("main", misfire_grace_seconds=10))
    try:
        ttl = worker.settings.run.lease_ttl_seconds
        jobs = {job.id: job for job in build_scheduler(worker, now=T0).get_jobs()}
        assert {job.misfire_grace_time for job in jobs.values()} == {ttl}
        assert jobs["main:full"].kwargs == {"lease_wait_seconds": float(ttl)}
    finally:
        worker.close()


def test_the_catch_up_takes_over_a_lease_that_died_on_this_host_at_once(worker: FakeWorker) -> None:
    """A lease left by a process of this host that is gone (a killed `serve`) is taken over: the catch-up
    runs without waiting."""
    here = this_process()
    gone = Holder(here.host, here.pid, here.namespace, "the-killed-serve")
    worker.store.acquire_lease("sf", "dead-run", T0, TTL, me=gone)
    summary = run_scheduled(worker, "sf", "incremental", lease_wait_seconds=60, wait=_no_wait)
    assert summary is not None and summary.status == "succeeded"


def test_the_catch_up_waits_out_another_hosts_dead_holder(tmp_path: Path) -> None:
    """A lease left by a run on another host is waited out: the catch-up runs once its TTL has passed."""
    clock = [T0]
    settings = make_worker(tmp_path, connection("main")).settings
    worker = FakeWorker(settings, clock=lambda: clock[0], sleep=lambda seconds: None)
    try:
        ttl = timedelta(seconds=settings.run.lease_ttl_seconds)
        worker.store.acquire_lease("main", "dead-run", T0, ttl, me=Holder("host-b", 1, "", "x"))
        waits: list[float] = []

        def wait(seconds: float) -> bool:
            waits.append(seconds)
            clock[0] += timedelta(seconds=seconds)
            return False

        summary = run_scheduled(worker, "main", "incremental", lease_wait_seconds=ttl.seconds, wait=wait)
        assert summary is not None and summary.status == "succeeded"
        assert waits == [LEASE_RETRY_SECONDS, LEASE_RETRY_SECONDS]
    finally:
        worker.close()


def _no_wait(seconds: float) -> bool:
    raise AssertionError("the lease of a dead local holder was waited for")
