"""Which runs a tick defers: pure functions of the settings and the tick's timestamp.

Every worker's periodic deferrer may run the same tick, but procrastinate defers a periodic job once per
(task, timestamp) across the cluster, and everything here depends only on that timestamp (never on a
worker's clock or memory), so the tick's job defers the same runs wherever it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from worker.config.settings import ConnectionSettings, Settings
from worker.errors import ConfigError
from worker.state.model import RunMode

MINUTE_SECONDS = 60
"""The length of a schedule minute; `bant-sync worker --tick-seconds` shortens it for tests only."""


@dataclass(frozen=True)
class DueRun:
    """One run a tick defers."""

    connection: str
    mode: RunMode


def full_sweep_trigger(conn: ConnectionSettings, zone: ZoneInfo) -> CronTrigger:
    """The connection's `full_sweep_cron` read in `rules.timezone`, as `serve` reads it (APScheduler's
    CronTrigger, so both schedulers agree on every expression). Raises ConfigError for a bad one."""
    try:
        return CronTrigger.from_crontab(conn.schedule.full_sweep_cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(
            [
                f"connections.{conn.name}.full_sweep_cron: {conn.schedule.full_sweep_cron!r} is not a "
                f"crontab expression ({exc}); five fields 'min hour day month weekday', e.g. '0 2 * * *'"
            ]
        ) from None


def check_schedules(settings: Settings) -> None:
    """Fail at start, with every problem listed, rather than in a tick: bad intervals and cron lines."""
    problems: list[str] = []
    zone = ZoneInfo(settings.rules.timezone)
    for conn in settings.connections.values():
        if not conn.enabled:
            continue
        if conn.schedule.incremental_every_minutes < 1:
            problems.append(f"connections.{conn.name}.incremental_every_minutes: must be at least 1")
        try:
            full_sweep_trigger(conn, zone)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)


def cron_fires_between(trigger: CronTrigger, after: datetime, until: datetime) -> bool:
    """True when the cron fires in (after, until]."""
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    return fire is not None and fire <= until


def due_runs(settings: Settings, timestamp: int, minute_seconds: int = MINUTE_SECONDS) -> list[DueRun]:
    """The runs due at the tick of `timestamp` (UNIX seconds, a multiple of `minute_seconds`).

    Incremental: when the tick's minute number (timestamp // minute_seconds) is a multiple of the
    connection's `incremental_every_minutes`. Full sweep: when its cron fires within the minute that ends
    at the tick (with the real 60-second minute; a shortened one is for tests of the incremental cadence).
    Full sweeps come first: the queue runs them after incremental runs anyway (priorities), but a
    connection whose full sweep is due needs no incremental run beside it.
    """
    zone = ZoneInfo(settings.rules.timezone)
    minute = timestamp // minute_seconds
    until = datetime.fromtimestamp(timestamp, UTC)
    after = until - timedelta(seconds=minute_seconds)
    runs: list[DueRun] = []
    for conn in settings.connections.values():
        if not conn.enabled:
            continue
        if cron_fires_between(full_sweep_trigger(conn, zone), after, until):
            runs.append(DueRun(conn.name, RunMode.FULL))
        elif minute % max(1, conn.schedule.incremental_every_minutes) == 0:
            runs.append(DueRun(conn.name, RunMode.INCREMENTAL))
    return runs
