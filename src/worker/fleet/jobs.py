"""The fleet's tasks: one sync run per job, the tick that defers the due runs, and the stalled-job sweep.

Registered by `register(app, ...)` rather than at import, because the periodic tasks' cron lines depend on
the worker's `--tick-seconds` (60 in production). The tasks reach the process's `Worker` (state store,
connectors, stop flag) through the job context's `additional_context`, which `runner` fills.
"""

from __future__ import annotations

from typing import Any

import structlog
from procrastinate import App, JobContext, exceptions
from procrastinate.jobs import Status

from worker.fleet.due import MINUTE_SECONDS, due_runs
from worker.serve.scheduler import run_scheduled
from worker.service import Worker
from worker.state.model import RunMode

log = structlog.get_logger()

SYNC_TASK = "bant_sync.sync_connection"
TICK_TASK = "bant_sync.tick"
RETRY_STALLED_TASK = "bant_sync.retry_stalled_jobs"

SYNC_QUEUE = "sync"
"""The queue of sync runs."""
HOUSEKEEPING_QUEUE = "housekeeping"
"""The queue of the tick and the stalled-job sweep (short jobs, never behind a long sweep)."""
QUEUES = (SYNC_QUEUE, HOUSEKEEPING_QUEUE)

PRIORITY = {RunMode.EVENTS: 20, RunMode.INCREMENTAL: 10, RunMode.FULL: 0}
"""Higher runs first (procrastinate fetches by priority, then age): event re-assessment, then the
incremental runs, then full sweeps."""

WORKER_KEY = "bant_sync_worker"
MINUTE_KEY = "bant_sync_minute_seconds"
STALLED_KEY = "bant_sync_stalled_seconds"

DEFAULT_STALLED_SECONDS = 30.0
"""A worker whose heartbeat is older than this is taken for dead and its running job is retried."""


def context_for(
    worker: Worker, minute_seconds: int = MINUTE_SECONDS, stalled_seconds: float = DEFAULT_STALLED_SECONDS
) -> dict[str, Any]:
    """The `additional_context` a worker process runs its jobs with."""
    return {WORKER_KEY: worker, MINUTE_KEY: minute_seconds, STALLED_KEY: stalled_seconds}


def sync_connection(context: JobContext, connection: str, mode: str) -> str:
    """One scheduled run of `connection`; returns the run's status (or "skipped").

    The queue lock (`lock=connection`) already keeps two of these jobs apart; a busy lease here means a
    run outside the queue holds the connection (a `bant-sync sync`, a `serve`, or a worker presumed dead
    that is still writing): the job logs who and ends, and the fencing token keeps the other run's writes
    the only ones. A retried job (its first worker died) first waits up to the lease TTL, as `serve`'s
    catch-up does: the dead attempt's lease, held on another host, frees itself only when its heartbeat is
    that old (on this host it is taken over at once). Other failures are logged by `run_scheduled` and
    end the job too: the next tick tries again, as `serve` does.
    """
    worker: Worker = context.additional_context[WORKER_KEY]
    retried = context.job.attempts > 0
    wait = float(worker.settings.run.lease_ttl_seconds) if retried else 0.0
    summary = run_scheduled(worker, connection, mode, lease_wait_seconds=wait)
    return "skipped" if summary is None else str(summary.status)


async def defer_sync(app: App, connection: str, mode: RunMode) -> int | None:
    """Queue one run; None when an identical run already waits (its `queueing_lock` folds this one in)."""
    deferrer = app.configure_task(
        SYNC_TASK,
        lock=connection,
        queueing_lock=f"{connection}:{mode}",
        priority=PRIORITY.get(mode, 0),
        queue=SYNC_QUEUE,
    )
    try:
        return await deferrer.defer_async(connection=connection, mode=str(mode))
    except exceptions.AlreadyEnqueued:
        log.info("run already waiting: trigger folded into it", connection=connection, mode=mode)
        return None


async def tick(context: JobContext, timestamp: int) -> int:
    """Defer the runs due at `timestamp`; returns how many were queued (not folded)."""
    worker: Worker = context.additional_context[WORKER_KEY]
    minute_seconds: int = context.additional_context.get(MINUTE_KEY, MINUTE_SECONDS)
    queued = 0
    for run in due_runs(worker.settings, timestamp, minute_seconds):
        if await defer_sync(context.app, run.connection, run.mode) is not None:
            queued += 1
    return queued


async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
    """Put back in the queue the running jobs of workers without a heartbeat for `stalled_seconds`
    (killed, frozen, cut off): until then such a job holds its connection's lock. Returns how many.

    When a later trigger already queued the same run (same `queueing_lock`, waiting behind the dead job's
    lock), the dead job cannot go back to waiting beside it: it is marked failed instead, which frees the
    lock, and the waiting twin does the run.
    """
    seconds: float = context.additional_context.get(STALLED_KEY, DEFAULT_STALLED_SECONDS)
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=seconds))
    for job in stalled:
        assert job.id is not None
        fields = {
            "job_id": job.id,
            "task": job.task_name,
            "lock": job.lock,
            "seconds_since_heartbeat": seconds,
        }
        try:
            await manager.retry_job(job)
        except exceptions.UniqueViolation:
            await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
            log.warning("a dead worker's job ended: the same run already waits in the queue", **fields)
        else:
            log.warning("retrying the job of a worker without heartbeat", **fields)
    return len(stalled)


def tick_cron(minute_seconds: int) -> str:
    """The periodic tasks' cron line: every minute, or every `minute_seconds` seconds (a divisor of 60)
    in tests (croniter's sixth field is seconds)."""
    if minute_seconds == MINUTE_SECONDS:
        return "* * * * *"
    if minute_seconds < 1 or 60 % minute_seconds:
        raise ValueError(f"tick seconds must divide 60, not {minute_seconds}")
    return f"* * * * * */{minute_seconds}"


def register(app: App, minute_seconds: int = MINUTE_SECONDS) -> None:
    """Register the three tasks on `app`; the tick and the sweep run every (schedule) minute."""
    cron = tick_cron(minute_seconds)
    app.task(name=SYNC_TASK, queue=SYNC_QUEUE, pass_context=True)(sync_connection)
    tick_task = app.task(name=TICK_TASK, queue=HOUSEKEEPING_QUEUE, pass_context=True)(tick)
    app.periodic(cron=cron, periodic_id="tick")(tick_task)
    sweep = app.task(name=RETRY_STALLED_TASK, queue=HOUSEKEEPING_QUEUE, pass_context=True)(retry_stalled_jobs)
    app.periodic(cron=cron, periodic_id="retry_stalled")(sweep)
