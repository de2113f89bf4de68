"""Rows the CRM refused, per run: written with a page's checkpoint (or when the run finishes), read back for
`sync`, `status` and `GET /runs/{id}`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from worker.state.engine import Database
from worker.state.model import Rejection
from worker.state.schema import rejections


def insert_rejections(conn: Connection, run_id: str, connection: str, rows: Sequence[Rejection]) -> None:
    """Append `rows` to the run's rejections inside the caller's transaction."""
    if not rows:
        return
    conn.execute(
        rejections.insert(),
        [
            {
                "run_id": run_id,
                "connection": connection,
                "deal_id": r.deal_id,
                "operation": r.operation,
                "code": r.code,
                "message": r.message,
                "at": r.at,
            }
            for r in rows
        ],
    )


def run_rejections(db: Database, run_id: str, limit: int | None) -> list[Rejection]:
    """The rows `run_id` had refused, in the order they were recorded (the first `limit`, if given)."""
    query = select(rejections).where(rejections.c.run_id == run_id).order_by(rejections.c.seq)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [Rejection(r.deal_id, r.operation, r.code, r.message, r.at) for r in rows]


def rejection_count(db: Database, run_id: str) -> int:
    """How many rows `run_id` had refused."""
    query = select(func.count()).select_from(rejections).where(rejections.c.run_id == run_id)
    with db.read() as conn:
        return int(conn.execute(query).scalar() or 0)
