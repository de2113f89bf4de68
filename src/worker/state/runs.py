"""Run history: one row per sync run, from start to its final status, counters and API calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError

from worker.state.engine import Database
from worker.state.errors import DuplicateRunError, UnknownRecordError
from worker.state.model import Rejection, RunRecord, RunStatus, check_finish_status, utc
from worker.state.rejections import insert_rejections
from worker.state.schema import leases, runs


def start_run(db: Database, record: RunRecord) -> None:
    """Record a new run; a run id can only be started once."""
    try:
        with db.write() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=record.run_id,
                    connection=record.connection,
                    trigger=record.trigger.value,
                    mode=record.mode.value,
                    dry_run=record.dry_run,
                    scope=record.scope,
                    started_at=record.started_at,
                    finished_at=record.finished_at,
                    status=str(record.status),
                    counts=dict(record.counts),
                    api_calls=record.api_calls,
                    error=record.error,
                )
            )
    except IntegrityError as exc:
        raise DuplicateRunError(
            f"run {record.run_id} is already recorded: give every run a fresh id (e.g. a UUID)"
        ) from exc


def finish_run(
    db: Database,
    run_id: str,
    finished_at: datetime,
    status: str,
    counts: Mapping[str, int],
    api_calls: int,
    error: str | None,
    rejections_: Sequence[Rejection] = (),
) -> None:
    """Close a run with its final status and figures (also over a run marked abandoned meanwhile), and
    record the rejections no checkpoint recorded."""
    check_finish_status(status)
    values = {
        "finished_at": utc("finished_at", finished_at),
        "status": str(status),
        "counts": dict(counts),
        "api_calls": api_calls,
        "error": error,
    }
    with db.write() as conn:
        result = conn.execute(
            update(runs).where(runs.c.run_id == run_id).values(**values).returning(runs.c.connection)
        )
        connection = result.scalar()
        if connection is None:
            raise UnknownRecordError(f"run {run_id} was never started: call start_run before finish_run")
        insert_rejections(conn, run_id, connection, rejections_)


def _record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        connection=row.connection,
        trigger=row.trigger,
        mode=row.mode,
        started_at=row.started_at,
        dry_run=bool(row.dry_run),
        scope=row.scope,
        finished_at=row.finished_at,
        status=row.status,
        counts=row.counts,
        api_calls=int(row.api_calls),
        error=row.error,
    )


def list_runs(db: Database, connection: str | None, limit: int) -> list[RunRecord]:
    """The latest `limit` runs (of one connection, if given), newest first."""
    query = select(runs)
    if connection is not None:
        query = query.where(runs.c.connection == connection)
    query = query.order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
    with db.read() as conn:
        return [_record(row) for row in conn.execute(query).all()]


def get_run(db: Database, run_id: str) -> RunRecord | None:
    with db.read() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).first()
    return None if row is None else _record(row)


def mark_abandoned(db: Database, connection: str, now: datetime) -> list[str]:
    """Mark as abandoned the runs of `connection` still "running" that no longer hold a live lease at
    `now` (their process died or stalled past its lease). Returns their run ids, oldest first."""
    now = utc("now", now)
    with db.write() as conn:
        lease = conn.execute(
            select(leases).where(leases.c.connection == connection).with_for_update()
        ).first()
        live_holder = None
        if lease is not None and lease.expires_at is not None and lease.expires_at > now:
            live_holder = lease.run_id
        query = (
            select(runs.c.run_id)
            .where(runs.c.connection == connection, runs.c.status == RunStatus.RUNNING.value)
            .order_by(runs.c.started_at, runs.c.run_id)
        )
        stale = [run_id for run_id in conn.execute(query).scalars() if run_id != live_holder]
        if stale:
            conn.execute(
                update(runs)
                .where(runs.c.run_id.in_(stale), runs.c.status == RunStatus.RUNNING.value)
                .values(status=RunStatus.ABANDONED.value)
            )
    return stale
