"""Two `bant-sync worker` processes on the real PostgreSQL and a sandbox fleet (a schema per test).

The schedule minute is shortened to TICK seconds (`--tick-seconds`) so periods pass in seconds. Checked:
every connection is synced once per tick however many workers defer it, one run per connection at a time,
and the job of a SIGKILLed worker is retried by the other and finishes with no task duplicated.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sandbox.fleet import SandboxFleet
from sandbox.options import SandboxOptions
from tests.fleet.conftest import fleet_config, schema_url
from tests.integration.conftest import CrmView
from worker.config.loader import load_settings
from worker.fleet.app import build_app
from worker.fleet.jobs import SYNC_TASK, TICK_TASK, defer_sync
from worker.state.model import RunMode

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

TICK = 4
BANT_SYNC = [sys.executable, "-m", "worker.cli"]


def rows(url: str, query: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


@contextmanager
def workers(config: Path, count: int, log_dir: Path, *extra: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes, stopped with SIGTERM (then killed) at the end; their stderr in log_dir."""
    procs = []
    for n in range(count):
        log = (log_dir / f"worker-{n}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    *BANT_SYNC,
                    "--config",
                    str(config),
                    "--log-level",
                    "info",
                    "worker",
                    "--tick-seconds",
                    str(TICK),
                    "--stalled-seconds",
                    "3",
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_two_workers_sync_every_connection_once_per_tick(
    pg_schema: tuple[str, str], sandbox_fleet: SandboxFleet, tmp_path: Path
) -> None:
    url, schema = pg_schema
    db = schema_url(url, schema)
    config = fleet_config(sandbox_fleet, tmp_path / "fleet.toml", state_url=db, every_minutes=1)
    names = [n for sb in sandbox_fleet.accounts for n in sandbox_fleet.connection_names(sb)]
    with workers(config, 2, tmp_path) as procs:
        wait_for(
            lambda: rows(db, "SELECT to_regclass('procrastinate_jobs')")[0][0] is not None,
            20,
            "the queue tables",
        )
        wait_for(
            lambda: (
                rows(
                    db,
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'",
                    TICK_TASK,
                )[0][0]
                >= 3
            ),
            30,
            "three ticks",
        )
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(timeout=20) for proc in procs] == [0, 0]
    ticks = rows(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", TICK_TASK)[0][0]
    deferred = Counter(
        args["connection"]
        for (args,) in rows(db, "SELECT args FROM procrastinate_jobs WHERE task_name = %s", SYNC_TASK)
    )
    # Once per tick per connection (the tick defers every connection at once, whichever worker runs it).
    assert set(deferred) == set(names)
    assert set(deferred.values()) == {ticks}, deferred
    # Every run that started ran alone on its connection and finished; one run per finished job.
    with psycopg.connect(db, autocommit=True) as conn:
        runs = conn.execute(
            "SELECT connection, started_at, finished_at, status FROM runs ORDER BY connection, started_at"
        ).fetchall()
    done = Counter(
        args["connection"]
        for (args,) in rows(
            db, "SELECT args FROM procrastinate_jobs WHERE task_name = %s AND status = 'succeeded'", SYNC_TASK
        )
    )
    assert Counter(r[0] for r in runs) == done
    for previous, run in itertools.pairwise(runs):
        if previous[0] == run[0]:
            assert previous[2] is not None and previous[2] <= run[1], (previous, run)
    assert {r[3] for r in runs} <= {"succeeded", "stopped"}


def defer_run(config: Path, connection: str) -> None:
    """What a manual resync would do: queue one run of `connection` from outside the workers."""

    async def defer() -> None:
        app = build_app(load_settings(str(config), environ={}))
        async with app.open_async():
            await defer_sync(app, connection, RunMode.INCREMENTAL)

    asyncio.run(defer())


@pytest.mark.parametrize(
    "every_minutes",
    [
        pytest.param(1440, id="retried"),  # nothing else queued: the dead job itself runs again
        pytest.param(1, id="folded"),  # every tick queues the run: the dead job folds into the waiting one
    ],
)
def test_a_killed_workers_job_is_retried_by_the_other(
    pg_schema: tuple[str, str], tmp_path: Path, every_minutes: int
) -> None:
    url, schema = pg_schema
    db = schema_url(url, schema)
    options = SandboxOptions(deals=30, enforce_rate_limits=False, latency_ms=150)
    with SandboxFleet.start(accounts=1, options=options) as fleet:
        config = fleet_config(fleet, tmp_path / "fleet.toml", state_url=db, every_minutes=every_minutes)
        with workers(config, 2, tmp_path) as procs:
            by_pid = {proc.pid: proc for proc in procs}
            wait_for(
                lambda: rows(db, "SELECT to_regclass('procrastinate_jobs')")[0][0] is not None,
                20,
                "the queue tables",
            )
            defer_run(config, "hs-001")

            def running_job() -> tuple[int, int] | None:
                if rows(db, "SELECT to_regclass('procrastinate_jobs')")[0][0] is None:
                    return None
                found = rows(
                    db,
                    "SELECT j.id, l.holder_pid FROM procrastinate_jobs j "
                    "JOIN leases l ON l.connection = j.args->>'connection' "
                    "WHERE j.task_name = %s AND j.status = 'doing' AND l.run_id IS NOT NULL "
                    "AND l.holder_pid = ANY(%s)",
                    SYNC_TASK,
                    list(by_pid),
                )
                if not found:
                    return None
                job_id, pid = found[0]
                return int(job_id), int(pid)

            # Runs are due every tick; wait for one in progress, then kill its worker. Later ticks queue
            # the same run behind the dead job's lock: the sweep folds the dead job into that one.
            job_id, pid = wait_for(running_job, 30, "a run in progress")
            os.kill(pid, signal.SIGKILL)
            by_pid[pid].wait(timeout=10)
            (connection,) = rows(
                db, "SELECT args->>'connection' FROM procrastinate_jobs WHERE id = %s", job_id
            )[0]
            killed_at = rows(db, "SELECT now()")[0][0]

            def recovered() -> bool:
                (status,) = rows(db, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id)[0]
                finished = rows(
                    db,
                    "SELECT 1 FROM runs WHERE connection = %s AND started_at > %s AND status = 'succeeded'",
                    connection,
                    killed_at,
                )
                return status != "doing" and bool(finished)

            wait_for(
                recovered, 40, f"job {job_id} of the killed worker retried and a run of {connection} finished"
            )
            if every_minutes == 1440:
                assert rows(db, "SELECT status, attempts FROM procrastinate_jobs WHERE id = %s", job_id) == [
                    ("succeeded", 2)  # started twice: by the killed worker, then by the other
                ]
            survivor = next(p for p in procs if p.pid != pid)
            assert survivor.poll() is None
        crm = "salesforce" if connection.startswith("sf-") else "hubspot"
        keys = Counter((t["deal_id"], t["key"]) for t in CrmView(fleet.accounts[0], crm).tasks() if t["open"])
        assert keys and max(keys.values()) == 1, keys
