"""Where a connection's sync stands: its cursor, the audit log of status changes, latest status per deal.

`checkpoint` is the one write the pipeline makes after each page, all in one transaction behind the
lease's fencing check: either the whole page's bookkeeping (cursor, audit rows, deal states, the rows the
CRM rejected, the run's counters) lands or none of it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from connectors.model import Cursor
from rules.model import Status
from worker.state.engine import Database
from worker.state.leases import verify_current
from worker.state.model import RUN_SOURCE, AuditRow, DealState, Lease, Rejection, StatusChange
from worker.state.rejections import insert_rejections
from worker.state.schema import audit_log, cursors, deal_states, runs

_UNQUALIFIED = tuple(status.value for status in Status if status.is_unqualified)
NO_OWNER = ""
"""The key unqualified_by_owner uses for deals that have no owner."""


def checkpoint(
    db: Database,
    lease: Lease,
    cursor: Cursor | None,
    status_changes: Sequence[StatusChange],
    deal_states_: Sequence[DealState],
    run_progress: Mapping[str, int],
    rejections_: Sequence[Rejection] = (),
) -> None:
    """Record one page's progress atomically, or raise LeaseLostError and record nothing."""
    with db.write() as conn:
        verify_current(conn, lease)
        if cursor is not None:
            _advance_cursor(db, conn, lease.connection, cursor)
        if status_changes:
            conn.execute(audit_log.insert(), [_audit_values(lease, change) for change in status_changes])
        if deal_states_:
            _upsert_deal_states(db, conn, lease.connection, deal_states_)
        insert_rejections(conn, lease.run_id, lease.connection, rejections_)
        conn.execute(update(runs).where(runs.c.run_id == lease.run_id).values(counts=dict(run_progress)))


def _advance_cursor(db: Database, conn: Connection, connection: str, cursor: Cursor) -> None:
    """Move the cursor forward only: a page behind the saved position (a full sweep, a scoped run, an
    overlap re-read) must not make the next incremental run re-read what is already done."""
    row = conn.execute(select(cursors).where(cursors.c.connection == connection).with_for_update()).first()
    if row is not None and Cursor(row.modified_at, row.deal_id) >= cursor:
        return
    values = {"modified_at": cursor.modified_at, "deal_id": cursor.deal_id}
    stmt = db.insert(cursors).values(connection=connection, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=[cursors.c.connection], set_=values))


def _audit_values(lease: Lease, change: StatusChange) -> dict[str, Any]:
    return {
        "connection": lease.connection,
        "run_id": lease.run_id,
        "deal_id": change.deal_id,
        "old_status": change.old_status,
        "new_status": change.new_status,
        "missing": change.missing,
        "at": change.at,
        "source": change.source,
        "actor": change.actor,
        "note": change.note,
    }


def _upsert_deal_states(db: Database, conn: Connection, connection: str, states: Sequence[DealState]) -> None:
    """Upsert the newest state per deal; a state older than the stored one never overwrites it."""
    newest: dict[str, DealState] = {}
    for state in states:
        seen = newest.get(state.deal_id)
        if seen is None or seen.updated_at <= state.updated_at:
            newest[state.deal_id] = state
    rows = [
        {
            "connection": connection,
            "deal_id": s.deal_id,
            "owner_id": s.owner_id,
            "status": s.status,
            "missing": s.missing,
            "updated_at": s.updated_at,
            "flagged_since": s.flagged_since.isoformat() if s.flagged_since else None,
            "deal_name": s.deal_name,
            "snooze_until": s.snooze_until.isoformat() if s.snooze_until else None,
            "snoozed_on": s.snoozed_on.isoformat() if s.snoozed_on else None,
            "judged": s.judged,
        }
        for s in newest.values()
    ]
    stmt = db.insert(deal_states)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[deal_states.c.connection, deal_states.c.deal_id],
        set_={
            "owner_id": excluded.owner_id,
            "status": excluded.status,
            "missing": excluded.missing,
            "updated_at": excluded.updated_at,
            "flagged_since": excluded.flagged_since,
            "deal_name": excluded.deal_name,
            "snooze_until": excluded.snooze_until,
            "snoozed_on": excluded.snoozed_on,
            "judged": excluded.judged,
        },
        where=deal_states.c.updated_at <= excluded.updated_at,
    )
    conn.execute(stmt, rows)


def get_cursor(db: Database, connection: str) -> Cursor | None:
    with db.read() as conn:
        row = conn.execute(select(cursors).where(cursors.c.connection == connection)).first()
    return None if row is None else Cursor(row.modified_at, row.deal_id)


def audit(db: Database, connection: str, deal_id: str | None, limit: int) -> list[AuditRow]:
    """Status changes on `connection` (one deal's, if given), newest first."""
    query = select(audit_log).where(audit_log.c.connection == connection)
    if deal_id is not None:
        query = query.where(audit_log.c.deal_id == deal_id)
    query = query.order_by(audit_log.c.seq.desc()).limit(limit)
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [audit_row(r) for r in rows]


def audit_row(r: Row[Any]) -> AuditRow:
    """One `audit_log` row as an AuditRow (rows stored before schema version 2 have no source: "run")."""
    return AuditRow(
        r.seq,
        r.connection,
        r.run_id,
        r.deal_id,
        r.old_status,
        r.new_status,
        r.missing,
        r.at,
        r.source or RUN_SOURCE,
        r.actor,
        r.note,
    )


def forget_deal_states(
    db: Database, lease: Lease, before: datetime, deal_id: str | Sequence[str] | None = None
) -> int:
    """Drop the states a sweep did not refresh (`updated_at` before it began): those deals closed or were
    deleted, so they no longer count in status_counts or unqualified_by_owner. Only `deal_id`'s (one id or
    several), if named. Fenced by `lease` (LeaseLostError, nothing deleted). Returns how many were dropped."""
    stale = delete(deal_states).where(
        deal_states.c.connection == lease.connection, deal_states.c.updated_at < before
    )
    if deal_id is None:
        with db.write() as conn:
            verify_current(conn, lease)
            return int(conn.execute(stale).rowcount or 0)
    ids = [deal_id] if isinstance(deal_id, str) else sorted(set(deal_id))
    dropped = 0
    with db.write() as conn:
        verify_current(conn, lease)
        for start in range(0, len(ids), _FORGET_CHUNK):
            chunk = ids[start : start + _FORGET_CHUNK]
            dropped += int(conn.execute(stale.where(deal_states.c.deal_id.in_(chunk))).rowcount or 0)
    return dropped


_FORGET_CHUNK = 500


def status_counts(db: Database, connection: str) -> dict[str, int]:
    """How many known deals are in each status on `connection`."""
    query = (
        select(deal_states.c.status, func.count())
        .where(deal_states.c.connection == connection)
        .group_by(deal_states.c.status)
    )
    with db.read() as conn:
        return {status: int(count) for status, count in conn.execute(query).all()}


def unqualified_by_owner(db: Database, connection: str) -> dict[str, int]:
    """How many unqualified deals each owner has (deals without an owner under NO_OWNER)."""
    query = (
        select(deal_states.c.owner_id, func.count())
        .where(deal_states.c.connection == connection, deal_states.c.status.in_(_UNQUALIFIED))
        .group_by(deal_states.c.owner_id)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    counts: dict[str, int] = {}
    for owner, count in rows:
        key = owner or NO_OWNER
        counts[key] = counts.get(key, 0) + int(count)
    return counts
