"""One fleet worker process: open the queue, make sure its tables exist, run jobs until SIGTERM/SIGINT.

Shutdown mirrors `serve`: the signal sets the `Worker`'s stop flag at once, so a run in progress finishes
its current page, checkpoints and ends "stopped" (the next tick resumes it from that cursor), and tells
procrastinate's worker to take no new job and wait for the running ones; then the process exits 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Sequence

import psycopg
import structlog
from procrastinate import App
from procrastinate import worker as procrastinate_worker
from procrastinate.schema import SchemaManager

from worker.fleet.jobs import context_for
from worker.service import Worker

log = structlog.get_logger()

SCHEMA_LOCK_KEY = 0x62616E74
"""The advisory lock two workers starting together take, so only one of them creates the queue tables."""


async def ensure_queue_schema(conninfo: str) -> bool:
    """Create procrastinate's tables in the state store's schema when they are missing; True when created.

    Under an advisory lock, so workers starting at once create them once. Upgrading them to a newer
    procrastinate's schema is a migration step of its own (docs/fleet.md), never done here.
    """
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            cursor = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return False
            async with conn.transaction():
                await conn.execute(SchemaManager.get_schema())
            log.info("created the job queue's tables")
            return True
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


def worker_name() -> str:
    """host:pid, as procrastinate's worker table and logs show it."""
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_fleet_worker(
    app: App,
    bant_worker: Worker,
    *,
    queues: Sequence[str] | None,
    concurrency: int,
    minute_seconds: int,
    stalled_seconds: float,
) -> bool:
    """Run jobs until SIGTERM/SIGINT (then wait for the running jobs' current page). Returns False when
    the worker stopped without being asked (procrastinate stops it when its heartbeat or listener fails,
    e.g. the database went away), so the process can exit with an error and be restarted."""
    async with app.open_async():
        runner = procrastinate_worker.Worker(
            app=app,
            queues=list(queues) if queues else None,
            concurrency=concurrency,
            name=worker_name(),
            install_signal_handlers=False,
            additional_context=context_for(bant_worker, minute_seconds, stalled_seconds),
            update_heartbeat_interval=max(1.0, stalled_seconds / 3),
            stalled_worker_timeout=stalled_seconds,
        )
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            log.info("stopping: running jobs finish their current page", signal=signal.Signals(signum).name)
            bant_worker.stop.set()
            runner.stop()  # type: ignore[no-untyped-call]  # procrastinate leaves it unannotated

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            log.info(
                "fleet worker started",
                name=runner.worker_name,
                queues=queues or "all",
                concurrency=concurrency,
            )
            await runner.run()  # type: ignore[no-untyped-call]
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
    if not bant_worker.stop.is_set():
        log.error("the worker stopped without being asked (see the lines above): exiting with an error")
        return False
    return True
