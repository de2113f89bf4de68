"""The per-connection lease: one run at a time across threads, processes and hosts.

One row per connection holds the current holder, its expiry and a fencing token. Acquisition bumps the
token, so every write that carries a lease (checkpoints) can prove it is still the newest holder: a run
that stalled past its expiry and was overtaken is refused instead of racing its successor. The row is
never deleted, so tokens only grow. Writers serialise on the row: `SELECT ... FOR UPDATE` on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select, update

from worker.state.engine import Database
from worker.state.errors import LeaseHeldError, LeaseLostError
from worker.state.model import Lease, utc
from worker.state.schema import leases


def _check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")


def _locked_row(conn: Connection, connection: str) -> Row[Any] | None:
    query = select(leases).where(leases.c.connection == connection).with_for_update()
    return conn.execute(query).first()


def verify_current(conn: Connection, lease: Lease) -> None:
    """Lock the lease row and raise LeaseLostError unless `lease` is still its current holder.

    An expired lease that nobody has taken over is still current: its token was never superseded.
    """
    row = _locked_row(conn, lease.connection)
    if row is None or row.token != lease.token or row.run_id != lease.run_id:
        holder = None if row is None else row.run_id
        raise LeaseLostError(lease.connection, lease.run_id, lease.token, holder)


def acquire(db: Database, connection: str, run_id: str, now: datetime, ttl: timedelta) -> Lease:
    """Take the connection's lease for `run_id` until now + ttl, with a token greater than any before.

    Raises LeaseHeldError while another run holds an unexpired lease. The same run acquiring again gets
    a new token, which makes its earlier Lease stale.
    """
    now = utc("now", now)
    _check_ttl(ttl)
    with db.write() as conn:
        seed = db.insert(leases).values(connection=connection, run_id=None, token=0, expires_at=None)
        conn.execute(seed.on_conflict_do_nothing(index_elements=[leases.c.connection]))
        row = _locked_row(conn, connection)
        assert row is not None
        if row.run_id is not None and row.run_id != run_id and row.expires_at > now:
            raise LeaseHeldError(row.run_id, row.expires_at, connection)
        lease = Lease(connection, run_id, int(row.token) + 1, now + ttl)
        conn.execute(
            update(leases)
            .where(leases.c.connection == connection)
            .values(run_id=run_id, token=lease.token, expires_at=lease.expires_at)
        )
    return lease


def renew(db: Database, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
    """Extend a lease to now + ttl; LeaseLostError if it was released or taken over meanwhile."""
    now = utc("now", now)
    _check_ttl(ttl)
    with db.write() as conn:
        verify_current(conn, lease)
        renewed = Lease(lease.connection, lease.run_id, lease.token, now + ttl)
        stmt = update(leases).where(leases.c.connection == lease.connection)
        conn.execute(stmt.values(expires_at=renewed.expires_at))
    return renewed


def release(db: Database, lease: Lease) -> None:
    """Give the lease up; does nothing if it is no longer ours (the token stays, so it keeps growing)."""
    with db.write() as conn:
        conn.execute(
            update(leases)
            .where(
                leases.c.connection == lease.connection,
                leases.c.run_id == lease.run_id,
                leases.c.token == lease.token,
            )
            .values(run_id=None, expires_at=None)
        )


def holder(db: Database, connection: str, now: datetime) -> Lease | None:
    """The unexpired lease on `connection`, if a run holds one at `now`."""
    now = utc("now", now)
    with db.read() as conn:
        row = conn.execute(select(leases).where(leases.c.connection == connection)).first()
    if row is None or row.run_id is None or row.expires_at <= now:
        return None
    return Lease(connection, row.run_id, int(row.token), row.expires_at)
