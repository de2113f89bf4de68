"""The per-connection lease: one run at a time across threads, processes and hosts.

One row per connection holds the current holder, its expiry and a fencing token. Acquisition bumps the
token, so every write that carries a lease (checkpoints) can prove it is still the newest holder: a run
that stalled past its expiry and was overtaken is refused instead of racing its successor. The row is
never deleted, so tokens only grow. Writers serialise on the row: `SELECT ... FOR UPDATE` on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite.

The lease is short (a minute by default) and kept alive by the run's heartbeat (worker.state.heartbeat).
The row names the holding process (host, PID, PID namespace, process instance), so a run on the same
machine takes over a dead holder's lease at once instead of waiting out its expiry; a holder on another
machine cannot be probed and is free once its heartbeat stops for the TTL (or a person runs `unlock
--force`). See docs/operations.md, "After a crash: leases".
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, select, update

from worker.state.engine import Database
from worker.state.errors import LeaseHeldError, LeaseLostError
from worker.state.model import Holder, Lease, RunStatus, utc
from worker.state.schema import leases, runs

Alive = Callable[[int], bool]
"""Whether a PID on this machine names a running process (pid_alive; tests inject their own)."""

_INSTANCE = uuid.uuid4().hex
"""This process's lifetime: a restarted process that got its predecessor's PID has another one."""


def pid_alive(pid: int) -> bool:
    """True while process `pid` runs on this machine. A zombie (killed, not yet reaped) is dead; a process
    of another user (PermissionError) is alive."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _pid_namespace() -> str:
    """The PID namespace of this process (Linux; "" elsewhere): PIDs only mean something inside it."""
    try:
        return str(Path("/proc/self/ns/pid").readlink())
    except OSError:
        return ""


def this_process() -> Holder:
    """The Holder this process writes into the leases it takes."""
    return Holder(socket.gethostname(), os.getpid(), _pid_namespace(), _INSTANCE)


def holder_is_dead(held: Holder | None, me: Holder, alive: Alive = pid_alive) -> bool:
    """True when `held` certainly died: it ran on this machine and its PID is gone (or is now `me`, a
    later process). Unknown (no holder recorded) or another machine: False, the lease must expire."""
    if held is None or not held.same_machine(me):
        return False
    if held.pid == me.pid:
        return held.instance != me.instance
    return not alive(held.pid)


def _check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError(f"lease ttl must be positive, got {ttl}")


def _locked_row(conn: Connection, connection: str) -> Row[Any] | None:
    query = select(leases).where(leases.c.connection == connection).with_for_update()
    return conn.execute(query).first()


def _held(connection: str, row: Row[Any]) -> Lease:
    holder = None
    if row.holder_host is not None and row.holder_pid is not None:
        holder = Holder(
            row.holder_host, int(row.holder_pid), row.holder_namespace or "", row.holder_instance or ""
        )
    return Lease(connection, row.run_id, int(row.token), row.expires_at, holder, row.heartbeat_at)


def _holder_values(holder: Holder | None, at: datetime | None) -> dict[str, Any]:
    return {
        "holder_host": None if holder is None else holder.host,
        "holder_pid": None if holder is None else holder.pid,
        "holder_namespace": None if holder is None else holder.namespace,
        "holder_instance": None if holder is None else holder.instance,
        "heartbeat_at": at,
    }


def verify_current(conn: Connection, lease: Lease) -> None:
    """Lock the lease row and raise LeaseLostError unless `lease` is still its current holder.

    An expired lease that nobody has taken over is still current: its token was never superseded.
    """
    row = _locked_row(conn, lease.connection)
    if row is None or row.token != lease.token or row.run_id != lease.run_id:
        holder = None if row is None else row.run_id
        raise LeaseLostError(lease.connection, lease.run_id, lease.token, holder)


def acquire(
    db: Database,
    connection: str,
    run_id: str,
    now: datetime,
    ttl: timedelta,
    *,
    me: Holder | None = None,
    alive: Alive = pid_alive,
) -> Lease:
    """Take the connection's lease for `run_id` until now + ttl, with a token greater than any before.

    Raises LeaseHeldError (naming the holder) while another run holds an unexpired lease, unless that
    holder ran on this machine and its process is dead: then its lease is taken over at once. A run whose
    lease is taken over (dead, or expired) and still shows "running" is marked abandoned. The same
    run acquiring again gets a new token, which makes its earlier Lease stale. `me` is the holder to
    record (default: this process).
    """
    now = utc("now", now)
    _check_ttl(ttl)
    me = me or this_process()
    with db.write() as conn:
        seed = db.insert(leases).values(connection=connection, run_id=None, token=0, expires_at=None)
        conn.execute(seed.on_conflict_do_nothing(index_elements=[leases.c.connection]))
        row = _locked_row(conn, connection)
        assert row is not None
        overtaken = row.run_id if row.run_id is not None and row.run_id != run_id else None
        if overtaken is not None and row.expires_at > now:
            held = _held(connection, row)
            if not holder_is_dead(held.holder, me, alive):
                raise LeaseHeldError(held.run_id, held.expires_at, connection, lease=held)
        if overtaken is not None:
            conn.execute(
                update(runs)
                .where(runs.c.run_id == overtaken, runs.c.status == RunStatus.RUNNING.value)
                .values(status=RunStatus.ABANDONED.value)
            )
        lease = Lease(connection, run_id, int(row.token) + 1, now + ttl, me, now)
        conn.execute(
            update(leases)
            .where(leases.c.connection == connection)
            .values(run_id=run_id, token=lease.token, expires_at=lease.expires_at, **_holder_values(me, now))
        )
    return lease


def renew(db: Database, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
    """Extend a lease to now + ttl and record the heartbeat; LeaseLostError if it was released or taken
    over meanwhile."""
    now = utc("now", now)
    _check_ttl(ttl)
    with db.write() as conn:
        verify_current(conn, lease)
        renewed = Lease(lease.connection, lease.run_id, lease.token, now + ttl, lease.holder, now)
        stmt = update(leases).where(leases.c.connection == lease.connection)
        conn.execute(stmt.values(expires_at=renewed.expires_at, heartbeat_at=now))
    return renewed


def release(db: Database, lease: Lease) -> bool:
    """Give the lease up; does nothing if it is no longer ours (the token stays, so it keeps growing).
    True when it was released."""
    with db.write() as conn:
        result = conn.execute(
            update(leases)
            .where(
                leases.c.connection == lease.connection,
                leases.c.run_id == lease.run_id,
                leases.c.token == lease.token,
            )
            .values(run_id=None, expires_at=None, **_holder_values(None, None))
        )
    return bool(result.rowcount)


def holder(db: Database, connection: str, now: datetime) -> Lease | None:
    """The unexpired lease on `connection`, if a run holds one at `now`."""
    now = utc("now", now)
    held = recorded(db, connection)
    if held is None or held.expires_at <= now:
        return None
    return held


def recorded(db: Database, connection: str) -> Lease | None:
    """The lease the row records, expired or not (None when nobody holds it): what `unlock` judges."""
    with db.read() as conn:
        row = conn.execute(select(leases).where(leases.c.connection == connection)).first()
    if row is None or row.run_id is None:
        return None
    return _held(connection, row)
