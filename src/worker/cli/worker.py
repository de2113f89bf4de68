"""`bant-sync worker`: one process of the fleet (docs/fleet.md), opt-in; `serve` is unchanged.

Runs procrastinate jobs from the state store's PostgreSQL until SIGTERM/SIGINT: the periodic tick defers
each enabled connection's due runs, `sync` jobs run them one per connection across the cluster, and the
stalled-job sweep retries a dead worker's job. The queue's tables are created on first start (under an
advisory lock, so several workers may start together).
"""

from __future__ import annotations

import argparse
import asyncio

from worker import exit_codes
from worker.config.settings import Settings
from worker.errors import UsageError
from worker.fleet.app import build_app, queue_conninfo
from worker.fleet.due import MINUTE_SECONDS, check_schedules
from worker.fleet.jobs import DEFAULT_STALLED_SECONDS, QUEUES, tick_cron
from worker.fleet.runner import ensure_queue_schema, run_fleet_worker
from worker.service import Worker


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns exit_codes.OK after a clean shutdown, FAILURE when the worker
    stopped on its own (the database went away)."""
    conninfo = queue_conninfo(settings)
    if args.concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, not {args.concurrency}")
    if args.stalled_seconds < 3:
        raise UsageError(f"--stalled-seconds must be at least 3, not {args.stalled_seconds}")
    try:
        tick_cron(args.tick_seconds)
    except ValueError as exc:
        raise UsageError(f"--tick-seconds: {exc}") from None
    unknown = sorted(set(args.queues or ()) - set(QUEUES))
    if unknown:
        raise UsageError(
            f"--queues: unknown queue(s) {', '.join(unknown)}; the queues are {', '.join(QUEUES)}"
        )
    check_schedules(settings)
    worker = Worker(settings)
    try:
        asyncio.run(ensure_queue_schema(conninfo))
        if args.init:
            return exit_codes.OK
        app = build_app(settings, args.tick_seconds)
        asked = asyncio.run(
            run_fleet_worker(
                app,
                worker,
                queues=args.queues,
                concurrency=args.concurrency,
                minute_seconds=args.tick_seconds,
                stalled_seconds=args.stalled_seconds,
            )
        )
    finally:
        worker.close()
    return exit_codes.OK if asked else exit_codes.FAILURE


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "worker",
        parents=[common],
        help="run one worker of a fleet sharing the state store's PostgreSQL (foreground; stop with SIGTERM)",
        description=(
            "Run sync jobs from the job queue in the state store's PostgreSQL (state.url must be "
            "PostgreSQL): start as many workers as you like, on one machine or several. Every minute a tick "
            "defers each enabled connection's due runs (incremental_every_minutes, full_sweep_cron) once "
            "for the whole fleet; one run per connection at a time; the job of a worker without heartbeat "
            "for --stalled-seconds is retried by another. The queue's tables are created on first start. "
            "SIGTERM/SIGINT finish the current page, checkpoint it and exit 0. See docs/fleet.md."
        ),
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="runs this worker does at once (default: 1)"
    )
    parser.add_argument(
        "--queues",
        nargs="+",
        choices=QUEUES,
        metavar="QUEUE",
        help=f"take jobs from these queues only ({', '.join(QUEUES)}; default: all)",
    )
    parser.add_argument(
        "--stalled-seconds",
        type=float,
        default=DEFAULT_STALLED_SECONDS,
        metavar="S",
        help=(
            f"a worker without heartbeat for this long is taken for dead and its job is run again "
            f"(default: {DEFAULT_STALLED_SECONDS:.0f})"
        ),
    )
    parser.add_argument(
        "--tick-seconds",
        type=int,
        default=MINUTE_SECONDS,
        metavar="S",
        help="the length of a schedule minute (default: 60; shorter only for tests)",
    )
    parser.add_argument(
        "--init", action="store_true", help="create the job queue's tables if missing, then exit"
    )
    parser.set_defaults(handler=run_worker)
