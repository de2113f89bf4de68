"""The weekly digest's delivery ledger: at most one message per connection, ISO week, recipient and channel.

A delivery is claimed before it is sent (`claim`: a new row, or a `failed` one, becomes `sending` in one
conditional write, so two digests running at once never both send) and settled after (`settle`: `sent` or
`failed`). A row a crash left `sending` may or may not have reached the recipient: it is never claimed
again unless the caller asks (`resend_uncertain`), so a recipient is sent a week's digest at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update

from worker.state.engine import Database
from worker.state.schema import digest_deliveries

SENDING = "sending"
SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One ledger row: where a recipient's digest of one week on one channel stands."""

    connection: str
    week: str
    recipient: str
    channel: str
    state: str
    attempts: int
    last_error: str | None
    at: datetime


def _key(connection: str, week: str, recipient: str, channel: str) -> ColumnElement[bool]:
    t = digest_deliveries.c
    return and_(t.connection == connection, t.week == week, t.recipient == recipient, t.channel == channel)


def claim(
    db: Database,
    connection: str,
    week: str,
    recipient: str,
    channel: str,
    now: datetime,
    *,
    resend_uncertain: bool = False,
) -> bool:
    """Mark the delivery `sending` when nobody has (no row) or the last try failed (or, with
    `resend_uncertain`, a crash left it `sending`); True when this caller now owns the send."""
    values = {"state": SENDING, "last_error": None, "at": now}
    retryable = [FAILED, SENDING] if resend_uncertain else [FAILED]
    with db.write() as conn:
        insert = db.insert(digest_deliveries).values(
            connection=connection, week=week, recipient=recipient, channel=channel, attempts=1, **values
        )
        inserted = conn.execute(insert.on_conflict_do_nothing().returning(digest_deliveries.c.attempts))
        if inserted.first() is not None:
            return True
        again = (
            update(digest_deliveries)
            .where(_key(connection, week, recipient, channel), digest_deliveries.c.state.in_(retryable))
            .values(attempts=digest_deliveries.c.attempts + 1, **values)
        )
        return conn.execute(again.returning(digest_deliveries.c.attempts)).first() is not None


def settle(
    db: Database,
    connection: str,
    week: str,
    recipient: str,
    channel: str,
    state: str,
    now: datetime,
    error: str | None = None,
) -> None:
    """Record how a claimed delivery ended: `sent`, or `failed` with the error (retried by the next run)."""
    if state not in (SENT, FAILED):
        raise ValueError(f"a delivery settles as {SENT!r} or {FAILED!r}, not {state!r}")
    with db.write() as conn:
        conn.execute(
            update(digest_deliveries)
            .where(_key(connection, week, recipient, channel))
            .values(state=state, last_error=error, at=now)
        )


def deliveries(db: Database, connection: str, week: str) -> list[Delivery]:
    """Every ledger row of the connection's week, by recipient then channel."""
    t = digest_deliveries.c
    query = (
        select(digest_deliveries)
        .where(t.connection == connection, t.week == week)
        .order_by(t.recipient, t.channel)
    )
    with db.read() as conn:
        return [
            Delivery(
                r.connection, r.week, r.recipient, r.channel, r.state, int(r.attempts), r.last_error, r.at
            )
            for r in conn.execute(query).all()
        ]
