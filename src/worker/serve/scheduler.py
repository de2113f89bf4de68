"""The `serve` schedule: per enabled connection, a catch-up run at start, an incremental run every N
minutes and a full sweep by cron.

Built on APScheduler 3.x (3.11; not the 4.x API). Every job has `max_instances=1` and `coalesce=True`, so
a slow run never stacks copies of itself and a backlog of missed firings collapses into one run, and a
misfire grace time (the connection's `misfire_grace_seconds`, never shorter than the lease TTL), so a
firing missed by more than that (the process was asleep or down) is dropped instead of run late. Two jobs
of one connection can still fire together (an incremental at 02:00 next to the nightly sweep): the lease
decides, and the loser is told which run holds it.

The catch-up run and the full sweep wait for a busy lease (retrying every LEASE_RETRY_SECONDS) for at
least the lease TTL: a run that died on another host holds it at most that long (one that died on this
host is taken over at once), so a restarted service catches up and the nightly sweep is not lost to a
crash. Incremental runs skip a busy lease: the next firing comes soon.

The job body is `run_scheduled`; tests call it directly instead of waiting for a trigger to fire.

Connections whose settings turn CRM events on (HubSpot `webhooks = true`, Salesforce `change_events =
true`) also get an EventCoalescer (`build_coalescer`): events mark deals dirty, and one debounced EVENTS run
per connection (`run_events`, on the coalescer's timer thread, taking the same lease) re-assesses them. A
Salesforce connection's change stream is followed by a StreamRunner thread (`build_stream_runner`); a gap in
it (a saved position past retention) asks for an incremental run at once (`schedule_reconcile`). The
scheduled incremental run stays: it is the reconciliation path that catches whatever an event missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from worker.config.settings import ConnectionSettings, DigestSettings
from worker.digest.scheduled import run_scheduled_digest
from worker.errors import ConfigError
from worker.events import EventCoalescer, StreamRunner, TimerFactory, thread_timer
from worker.service import Worker
from worker.state import LeaseHeldError
from worker.state.model import RunMode, RunStatus, Trigger
from worker.sync.run_model import RunRequest, RunSummary

log = structlog.get_logger()

LEASE_RETRY_SECONDS = 30.0
"""How often a full sweep that found the lease busy tries again (within its misfire grace time)."""

Wait = Callable[[float], bool]
"""Waits up to N seconds; True means "stop now" (the default is `worker.stop.wait`)."""


def run_scheduled(
    worker: Worker,
    connection: str,
    mode: str,
    *,
    lease_wait_seconds: float = 0.0,
    wait: Wait | None = None,
) -> RunSummary | None:
    """Run one scheduled sync; returns its summary, or None when it was skipped or crashed.

    A busy lease is not an error: the run is skipped (logged at INFO with the holder's run id). With
    `lease_wait_seconds` > 0 (the catch-up, full sweeps) it first retries every LEASE_RETRY_SECONDS for
    that long, so neither is lost to a run that happens to be running or to a dead run's lease on another
    host. Every other exception is
    logged and swallowed, because an exception escaping a job would only reach APScheduler's own log
    without our context, and the next firing must still happen.

    A run that fails is logged at ERROR with its reason in `error`: "scheduled run finished" with
    `status=failed` (a quota stop at WARNING), or "scheduled run crashed" with the exception and its
    traceback; log-level alerting (ERROR) sees every failed scheduled run.
    """
    wait = wait or worker.stop.wait
    waited = 0.0
    while True:
        if worker.stop.is_set():
            log.info("scheduled run skipped: shutting down", connection=connection, mode=mode)
            return None
        try:
            summary = worker.run(RunRequest(connection, mode=mode, trigger=Trigger.SCHEDULE))
        except LeaseHeldError as exc:
            if waited + LEASE_RETRY_SECONDS > lease_wait_seconds:
                log.info(
                    f"scheduled run skipped: run {exc.holder_run_id} holds the lease",
                    connection=connection,
                    mode=mode,
                    holder_run_id=exc.holder_run_id,
                )
                return None
            log.info(
                f"scheduled run waiting: run {exc.holder_run_id} holds the lease",
                connection=connection,
                mode=mode,
                holder_run_id=exc.holder_run_id,
            )
            if wait(LEASE_RETRY_SECONDS):
                log.info("scheduled run skipped: shutting down", connection=connection, mode=mode)
                return None
            waited += LEASE_RETRY_SECONDS
            continue
        except Exception as exc:
            log.exception(
                "scheduled run crashed; the next firing will try again",
                connection=connection,
                mode=mode,
                status=RunStatus.FAILED,
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
            return None
        at_level = {RunStatus.FAILED: log.error, RunStatus.QUOTA_STOPPED: log.warning}.get(
            summary.status, log.info
        )
        at_level(
            "scheduled run finished",
            connection=connection,
            mode=mode,
            run_id=summary.run_id,
            status=summary.status,
            error=summary.error,
        )
        return summary


def _cron(conn: ConnectionSettings, zone: ZoneInfo) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(conn.schedule.full_sweep_cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(
            [
                f"connections.{conn.name}.full_sweep_cron: {conn.schedule.full_sweep_cron!r} is not a "
                f"crontab expression ({exc}); five fields 'min hour day month weekday', e.g. '0 2 * * *'"
            ]
        ) from None


def _check(conn: ConnectionSettings) -> None:
    problems = []
    if conn.schedule.incremental_every_minutes < 1:
        problems.append(f"connections.{conn.name}.incremental_every_minutes: must be at least 1")
    if conn.schedule.misfire_grace_seconds < 1:
        problems.append(f"connections.{conn.name}.misfire_grace_seconds: must be at least 1")
    if problems:
        raise ConfigError(problems)


def grace_seconds(conn: ConnectionSettings, lease_ttl_seconds: int) -> int:
    """The misfire grace and lease wait of a connection's jobs: its `misfire_grace_seconds`, raised to the
    lease TTL (a shorter grace would drop a sweep that only waited out a dead run's lease)."""
    return max(conn.schedule.misfire_grace_seconds, lease_ttl_seconds)


def build_scheduler(
    worker: Worker,
    *,
    scheduler_type: type[BaseScheduler] = BackgroundScheduler,
    now: datetime | None = None,
) -> BaseScheduler:
    """A not-yet-started scheduler (UTC) with three jobs per enabled connection.

    Job ids are "NAME:catch-up", "NAME:incremental" and "NAME:full". The catch-up (an incremental run)
    fires once at `now` (default: the worker's clock) and waits up to the lease TTL for the lease, so a
    restarted service catches up at once; the incremental job then fires every interval after `now`. The
    cron expression is read in `rules.timezone` (UTC by default): "0 2 * * *" is 02:00 where the sales
    team's "today" is. Raises ConfigError for a bad cron expression or interval.
    """
    enabled = [conn for conn in worker.settings.connections.values() if conn.enabled]
    zone = ZoneInfo(worker.settings.rules.timezone)
    scheduler = scheduler_type(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=max(2, 2 * len(enabled)))},
    )
    start = now or worker.clock()
    ttl = worker.settings.run.lease_ttl_seconds
    for conn in enabled:
        _check(conn)
        grace = grace_seconds(conn, ttl)
        every = timedelta(minutes=conn.schedule.incremental_every_minutes)
        scheduler.add_job(
            run_scheduled,
            trigger=DateTrigger(run_date=start, timezone=UTC),
            args=(worker, conn.name, RunMode.INCREMENTAL),
            kwargs={"lease_wait_seconds": float(ttl)},
            id=f"{conn.name}:catch-up",
            name=f"{conn.name} catch-up at start",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
        )
        scheduler.add_job(
            run_scheduled,
            trigger=IntervalTrigger(minutes=conn.schedule.incremental_every_minutes, timezone=UTC),
            args=(worker, conn.name, RunMode.INCREMENTAL),
            id=f"{conn.name}:incremental",
            name=f"{conn.name} incremental every {conn.schedule.incremental_every_minutes} min",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
            next_run_time=start + every,
        )
        scheduler.add_job(
            run_scheduled,
            trigger=_cron(conn, zone),
            args=(worker, conn.name, RunMode.FULL),
            kwargs={"lease_wait_seconds": float(grace)},
            id=f"{conn.name}:full",
            name=f"{conn.name} full sweep at {conn.schedule.full_sweep_cron!r}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
        )
    if worker.settings.digest.enabled:
        _add_digest_jobs(scheduler, worker, worker.settings.digest, zone, start, ttl)
    return scheduler


def _add_digest_jobs(
    scheduler: BaseScheduler,
    worker: Worker,
    digest: DigestSettings,
    zone: ZoneInfo,
    start: datetime,
    grace: int,
) -> None:
    """The weekly digest ("digest:weekly", `[digest] schedule` in `rules.timezone`) and, when
    `retry_every_minutes` > 0, "digest:retry", which sends again only the week's failed deliveries."""
    try:
        weekly = CronTrigger.from_crontab(digest.schedule, timezone=zone)
    except ValueError as exc:
        raise ConfigError(
            [
                f"digest.schedule: {digest.schedule!r} is not a crontab expression ({exc}); five fields "
                f"'min hour day month weekday', e.g. '0 8 * * MON'"
            ]
        ) from None
    scheduler.add_job(
        run_scheduled_digest,
        trigger=weekly,
        args=(worker,),
        id="digest:weekly",
        name=f"weekly digest at {digest.schedule!r}",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(grace, 3600),
    )
    if digest.retry_every_minutes > 0:
        every = timedelta(minutes=digest.retry_every_minutes)
        scheduler.add_job(
            run_scheduled_digest,
            trigger=IntervalTrigger(minutes=digest.retry_every_minutes, timezone=UTC),
            args=(worker,),
            kwargs={"failed_only": True},
            id="digest:retry",
            name=f"digest retries every {digest.retry_every_minutes} min",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=grace,
            next_run_time=start + every,
        )


EVENT_SWITCHES = ("webhooks", "change_events")
"""The connection settings that turn CRM events on: HubSpot `webhooks`, Salesforce `change_events`."""


def event_connections(worker: Worker) -> list[ConnectionSettings]:
    """The enabled connections whose settings turn CRM events on (HubSpot `webhooks = true`, Salesforce
    `change_events = true`)."""
    return [
        conn
        for conn in worker.settings.connections.values()
        if conn.enabled and any(bool(getattr(conn.crm_settings, s, False)) for s in EVENT_SWITCHES)
    ]


def stream_connections(worker: Worker) -> list[ConnectionSettings]:
    """The enabled connections whose change stream `serve` follows (Salesforce `change_events = true`)."""
    return [
        conn
        for conn in worker.settings.connections.values()
        if conn.enabled and bool(getattr(conn.crm_settings, "change_events", False))
    ]


def schedule_reconcile(scheduler: BaseScheduler, worker: Worker, connection: str) -> None:
    """An incremental run of `connection` at once (job "NAME:reconcile"), for a change-stream gap: it
    waits for a busy lease like the catch-up run does, so the gap is not lost to a run that happens to be
    going. A second request while one is pending replaces it."""
    conn = worker.settings.connection(connection)
    grace = grace_seconds(conn, worker.settings.run.lease_ttl_seconds)
    scheduler.add_job(
        run_scheduled,
        args=(worker, connection, RunMode.INCREMENTAL),
        kwargs={"lease_wait_seconds": float(grace)},
        id=f"{connection}:reconcile",
        name=f"{connection} incremental run after a change-stream gap",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=grace,
    )


def build_stream_runner(
    worker: Worker,
    coalescer: EventCoalescer,
    reconcile: Callable[[str], None],
    *,
    wait: Wait | None = None,
) -> StreamRunner | None:
    """The change-stream threads of the connections that follow one (None when there is none), not yet
    started: their events mark deals in the state store and notify `coalescer`; a gap calls `reconcile`
    (in `serve`: `schedule_reconcile`). They stop with `worker.stop`."""
    names = [conn.name for conn in stream_connections(worker)]
    if not names:
        return None
    return StreamRunner(
        worker.store,
        names,
        worker.connector,
        coalescer.notify,
        reconcile,
        clock=worker.clock,
        wait=wait,
        stop=worker.stop,
    )


def run_events(worker: Worker, connection: str, coalescer: EventCoalescer | None = None) -> RunSummary | None:
    """The coalescer's job: one EVENTS run over the connection's dirty deals; none when no deal is dirty any
    more (a notify that came in while the last run was reading them: it read them), so no run spends its
    preflight reads on nothing. A busy lease raises
    LeaseHeldError (the coalescer tries again one window later). When the run succeeded and deals are still
    dirty (more than one run's cap), `coalescer` is notified again; a failed run leaves its marks for the
    next event, and the scheduled incremental run reconciles meanwhile."""
    if worker.stop.is_set():
        log.info("event run skipped: shutting down", connection=connection)
        return None
    if not worker.store.dirty_deals(connection, 1):
        log.info("event run skipped: no deal is waiting (an earlier run re-read them)", connection=connection)
        return None
    summary = worker.run(RunRequest(connection, mode=RunMode.EVENTS, trigger=Trigger.EVENT))
    at_level = {RunStatus.FAILED: log.error, RunStatus.QUOTA_STOPPED: log.warning}.get(
        summary.status, log.info
    )
    at_level(
        "event run finished",
        connection=connection,
        run_id=summary.run_id,
        status=summary.status,
        error=summary.error,
        deals_read=summary.deals.get("read", 0),
    )
    succeeded = summary.status == RunStatus.SUCCEEDED
    if coalescer is not None and succeeded and worker.store.dirty_deals(connection, 1):
        coalescer.notify(connection)
    return summary


def build_coalescer(
    worker: Worker,
    *,
    clock: Callable[[], float] = time.monotonic,
    timer_factory: TimerFactory = thread_timer,
) -> EventCoalescer | None:
    """The coalescer of the connections with CRM events on (None when there is none), each with its own
    `event_debounce_seconds` / `event_max_delay_seconds`. Deals left dirty by an earlier process (it
    stopped before re-assessing them) are notified at once, so they are not left for the next event."""
    connections = event_connections(worker)
    if not connections:
        return None
    windows = {
        conn.name: (conn.schedule.event_debounce_seconds, conn.schedule.event_max_delay_seconds)
        for conn in connections
    }
    coalescer: EventCoalescer

    def start_run(connection: str) -> None:
        run_events(worker, connection, coalescer)

    coalescer = EventCoalescer(start_run, clock, timer_factory, windows=windows)
    for conn in connections:
        if worker.store.dirty_deals(conn.name, 1):
            coalescer.notify(conn.name)
    log.info("crm events on", connections=sorted(windows))
    return coalescer
