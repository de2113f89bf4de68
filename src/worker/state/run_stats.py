"""Aggregates over the whole run history, for `/metrics` and `/health`: computed in SQL (`count`, `sum`,
`max` grouped by connection), so a scrape costs a few grouped queries however many runs the store keeps.

The figures only ever grow as runs are added or finish (they are the sums a Prometheus counter needs):
running runs are left out until they finish, and dry runs' write counters are left out (a dry run counts
the writes it *would* make).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, Float, and_, case, cast, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from worker.state.engine import Database
from worker.state.model import RunStatus
from worker.state.schema import rejections, runs

WRITE_COUNTERS = ("deals_written", "tasks_created", "tasks_completed")
"""The keys of a run's stored `counts` (RunSummary.stored_counts) that RunTotals sums."""


@dataclass(frozen=True)
class RunTotals:
    """One connection's finished runs of one status: how many, the CRM API calls they made, and the rows
    the non-dry ones wrote (`written`: deals_written, tasks_created, tasks_completed)."""

    connection: str
    status: str
    runs: int
    api_calls: int
    written: dict[str, int]


@dataclass(frozen=True)
class DurationStats:
    """Finished runs of one connection: how many, their total seconds, and how many took at most each of
    the bounds asked for (cumulative, as a Prometheus histogram's buckets)."""

    count: int
    total_seconds: float
    at_most: tuple[int, ...]


@dataclass(frozen=True)
class RunTimes:
    """When a connection's latest run finished, and its latest succeeded run (None: never)."""

    last_finished: datetime | None
    last_succeeded: datetime | None


@dataclass(frozen=True)
class Outcome:
    """One run that is no longer running, as /health judges it."""

    run_id: str
    status: str
    started_at: datetime
    finished_at: datetime | None


def _counter(db: Database, key: str) -> ColumnElement[Any]:
    """The integer `counts[key]` of a run (0 when absent); `counts` is JSON text on both backends."""
    if db.backend == "postgresql":
        value = cast(runs.c.counts, JSONB)[key].as_integer()
    else:
        value = type_coerce(runs.c.counts, JSON)[key].as_integer()
    return func.coalesce(value, 0)


def _duration(db: Database) -> ColumnElement[Any]:
    """finished_at - started_at in seconds (to the millisecond)."""
    if db.backend == "postgresql":
        return cast(func.extract("epoch", runs.c.finished_at - runs.c.started_at), Float)
    seconds = (func.julianday(runs.c.finished_at) - func.julianday(runs.c.started_at)) * 86400.0
    return func.round(seconds, 3)


def run_totals(db: Database) -> list[RunTotals]:
    """Every connection's runs that are no longer running, by status (grouped in SQL)."""
    written = [
        func.sum(case((runs.c.dry_run, 0), else_=_counter(db, key))).label(key) for key in WRITE_COUNTERS
    ]
    query = (
        select(
            runs.c.connection,
            runs.c.status,
            func.count().label("runs"),
            func.sum(runs.c.api_calls).label("api_calls"),
            *written,
        )
        .where(runs.c.status != RunStatus.RUNNING.value)
        .group_by(runs.c.connection, runs.c.status)
        .order_by(runs.c.connection, runs.c.status)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [
        RunTotals(
            row.connection,
            row.status,
            int(row.runs),
            int(row.api_calls or 0),
            {key: int(getattr(row, key) or 0) for key in WRITE_COUNTERS},
        )
        for row in rows
    ]


def run_durations(db: Database, bounds: Sequence[float]) -> dict[str, DurationStats]:
    """Per connection, the durations of its finished runs (finished_at set) against `bounds` (seconds)."""
    seconds = _duration(db)
    buckets = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    query = (
        select(runs.c.connection, func.count(), func.sum(seconds), *buckets)
        .where(runs.c.finished_at.is_not(None))
        .group_by(runs.c.connection)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return {
        row[0]: DurationStats(int(row[1]), float(row[2] or 0.0), tuple(int(n or 0) for n in row[3:]))
        for row in rows
    }


def run_times(db: Database) -> dict[str, RunTimes]:
    """Per connection that has finished a run: when its latest run finished and its latest success."""
    succeeded = runs.c.status == RunStatus.SUCCEEDED.value
    query = (
        select(
            runs.c.connection,
            func.max(runs.c.finished_at).label("finished"),
            func.max(case((succeeded, runs.c.finished_at))).label("succeeded"),
        )
        .where(runs.c.finished_at.is_not(None))
        .group_by(runs.c.connection)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    return {row.connection: RunTimes(row.finished, row.succeeded) for row in rows}


def last_succeeded(db: Database, connection: str) -> datetime | None:
    """When `connection`'s latest succeeded run finished; None when none has."""
    query = select(func.max(runs.c.finished_at)).where(
        and_(runs.c.connection == connection, runs.c.status == RunStatus.SUCCEEDED.value)
    )
    with db.read() as conn:
        found: datetime | None = conn.execute(query).scalar()
    return found


def rejection_totals(db: Database) -> dict[str, int]:
    """How many rows the CRM has refused per connection, over every run."""
    query = select(rejections.c.connection, func.count()).group_by(rejections.c.connection)
    with db.read() as conn:
        return {connection: int(count) for connection, count in conn.execute(query).all()}


def latest_outcomes(db: Database, connection: str, limit: int) -> list[Outcome]:
    """The latest `limit` runs of `connection` that are no longer running, newest first."""
    query = (
        select(runs.c.run_id, runs.c.status, runs.c.started_at, runs.c.finished_at)
        .where(runs.c.connection == connection, runs.c.status != RunStatus.RUNNING.value)
        .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        .limit(limit)
    )
    with db.read() as conn:
        return [Outcome(*row) for row in conn.execute(query).all()]
