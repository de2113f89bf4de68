"""What the outcome report reads from the state store: every current verdict of a connection, and its audit
log up to a moment. Read-only; rows are fetched in one query each, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select

from worker.state.deals import state_from_row
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
