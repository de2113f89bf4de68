"""What the outcome report, `status` and the digest read from the state store: every current verdict of a
connection, its audit log up to a moment, and the audit rows that tell about snoozes (who snoozed a deal and
why, refused and ended snoozes). Read-only; rows are fetched in one query each (per 5,000 deals), streamed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import select

from rules.model import Status
from rules.snooze import SNOOZED_NOTE
from worker.state.deals import _chunks, state_from_row
from worker.state.engine import Database
from worker.state.model import AuditRow, DealState
from worker.state.progress import audit_row
from worker.state.schema import audit_log, deal_states


def current_states(db: Database, connection: str) -> list[DealState]:
    """The latest verdict of every open deal bant-sync knows on `connection`."""
    query = select(deal_states).where(deal_states.c.connection == connection)
    with db.read() as conn:
        return [state_from_row(row) for row in conn.execute(query)]


def audit_until(db: Database, connection: str, until: datetime) -> Iterator[AuditRow]:
    """Every audit row of `connection` at or before `until`, oldest first."""
    query = (
        select(audit_log)
        .where(audit_log.c.connection == connection, audit_log.c.at <= until)
        .order_by(audit_log.c.seq)
    )
    with db.read() as conn:
        for r in conn.execute(query):
            yield audit_row(r)


def snooze_notes(db: Database, connection: str, deal_ids: Iterable[str]) -> dict[str, AuditRow]:
    """For each of these deals, its latest audit row that snoozed it (new status `snoozed`, a note starting
    "Snoozed until "): who snoozed it, when, and the reason the note carries. Deals without one are absent."""
    found: dict[str, AuditRow] = {}
    with db.read() as conn:
        for chunk in _chunks(deal_ids):
            query = (
                select(audit_log)
                .where(
                    audit_log.c.connection == connection,
                    audit_log.c.deal_id.in_(chunk),
                    audit_log.c.new_status == Status.SNOOZED.value,
                    audit_log.c.note.startswith(SNOOZED_NOTE, autoescape=True),
                )
                .order_by(audit_log.c.seq)
            )
            for r in conn.execute(query):
                found[r.deal_id] = audit_row(r)
    return found


def snooze_events(
    db: Database, connection: str, prefix: str, start: datetime, end: datetime | None = None
) -> list[AuditRow]:
    """The audit rows of `connection` from `start` (up to `end`, when given) whose note begins with `prefix`
    (IGNORED_NOTE: refused snoozes; ENDED_NOTE: snoozes that ran out), oldest first."""
    query = select(audit_log).where(
        audit_log.c.connection == connection,
        audit_log.c.at >= start,
        audit_log.c.note.startswith(prefix, autoescape=True),
    )
    if end is not None:
        query = query.where(audit_log.c.at <= end)
    with db.read() as conn:
        return [audit_row(r) for r in conn.execute(query.order_by(audit_log.c.seq))]
