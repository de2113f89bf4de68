"""The fleet's tasks on procrastinate's in-memory connector, with a real Worker on a sandbox fleet."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from procrastinate import App, testing
from procrastinate.periodic import PeriodicDeferrer
from procrastinate.worker import Worker as QueueWorker

from sandbox.fleet import SandboxFleet
from tests.fleet.conftest import fleet_config
from worker.config.loader import load_settings
from worker.fleet.jobs import (
    HOUSEKEEPING_QUEUE,
    PRIORITY,
    SYNC_QUEUE,
    SYNC_TASK,
    TICK_TASK,
    context_for,
    defer_sync,
    register,
)
from worker.service import Worker
from worker.state.model import RunMode, RunStatus

TICK = 1_764_547_200  # 2025-12-01 00:00 UTC: a minute every interval divides, not the 02:00 sweep


@pytest.fixture
def worker(sandbox_fleet: SandboxFleet, tmp_path: Path) -> Iterator[Worker]:
    settings = load_settings(str(fleet_config(sandbox_fleet, tmp_path / "fleet.toml")), environ={})
    opened = Worker(settings)
    try:
        yield opened
    finally:
        opened.close()


def in_memory_app() -> tuple[App, testing.InMemoryConnector]:
    connector = testing.InMemoryConnector()
    app = App(connector=connector)
    register(app)
    return app, connector


def run_jobs(app: App, worker: Worker, queues: list[str]) -> None:
    """Run the queued jobs of `queues` until none is left (a worker with wait=False)."""
    runner = QueueWorker(
        app=app,
        queues=queues,
        wait=False,
        install_signal_handlers=False,
        additional_context=context_for(worker),
    )
    asyncio.run(runner.run())  # type: ignore[no-untyped-call]


def jobs_of(connector: testing.InMemoryConnector, task: str) -> list[dict[str, object]]:
    return [job for job in connector.jobs.values() if job["task_name"] == task]


def test_the_tick_is_deferred_once_per_period_and_defers_each_connections_run(worker: Worker) -> None:
    app, connector = in_memory_app()

    async def two_workers_defer_the_same_tick() -> None:
        for _ in range(2):
            deferrer = PeriodicDeferrer(registry=app.periodic_registry)
            ticks = [(task, TICK) for task in app.periodic_registry.periodic_tasks.values()]
            await deferrer.defer_jobs(ticks)

    asyncio.run(two_workers_defer_the_same_tick())
    assert len(jobs_of(connector, TICK_TASK)) == 1
    run_jobs(app, worker, [HOUSEKEEPING_QUEUE])
    syncs = jobs_of(connector, SYNC_TASK)
    assert sorted((job["args"]["connection"], job["args"]["mode"]) for job in syncs) == sorted(  # type: ignore[index]
        (name, "incremental") for name in worker.settings.connections
    )
    for job in syncs:
        connection = job["args"]["connection"]  # type: ignore[index]
        assert job["lock"] == connection
        assert job["queueing_lock"] == f"{connection}:incremental"
        assert job["priority"] == PRIORITY[RunMode.INCREMENTAL]
        assert job["queue_name"] == SYNC_QUEUE
        assert job["status"] == "todo"


def test_a_repeated_trigger_folds_into_the_waiting_run(worker: Worker) -> None:
    app, connector = in_memory_app()

    async def defer_twice() -> list[int | None]:
        return [
            await defer_sync(app, "hs-001", RunMode.INCREMENTAL),
            await defer_sync(app, "hs-001", RunMode.INCREMENTAL),
            await defer_sync(app, "hs-001", RunMode.FULL),
        ]

    first, folded, full = asyncio.run(defer_twice())
    assert first is not None and folded is None and full is not None
    assert len(jobs_of(connector, SYNC_TASK)) == 2
    assert PRIORITY[RunMode.EVENTS] > PRIORITY[RunMode.INCREMENTAL] > PRIORITY[RunMode.FULL]


def test_the_sync_job_runs_the_connection(worker: Worker) -> None:
    app, connector = in_memory_app()
    asyncio.run(defer_sync(app, "hs-001", RunMode.INCREMENTAL))
    run_jobs(app, worker, [SYNC_QUEUE])
    [job] = jobs_of(connector, SYNC_TASK)
    assert job["status"] == "succeeded"
    [run] = worker.store.list_runs("hs-001", 5)
    assert run.status == RunStatus.SUCCEEDED and run.trigger == "schedule"


def test_a_busy_lease_ends_the_job_without_a_run(worker: Worker) -> None:
    app, connector = in_memory_app()
    lease = worker.reserve("sf-001")
    try:
        asyncio.run(defer_sync(app, "sf-001", RunMode.INCREMENTAL))
        run_jobs(app, worker, [SYNC_QUEUE])
    finally:
        worker.store.release_lease(lease)
    [job] = jobs_of(connector, SYNC_TASK)
    assert job["status"] == "succeeded"
    assert [r.run_id for r in worker.store.list_runs("sf-001", 5)] == []
