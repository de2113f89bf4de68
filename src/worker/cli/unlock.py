"""`bant-sync unlock CONNECTION`: free the lease a dead run left behind, and only then.

A run killed on this machine is taken over by the next run at once, and one on another machine frees
its lease once its heartbeat is a TTL old; `unlock` is for a person who will not wait, or who knows more
than bant-sync can see. It releases the lease when its holder is certainly dead (same machine, PID gone)
or silent (another machine, no heartbeat for a TTL), and refuses, naming the holder, when it is alive:
same machine and PID alive (stop that process first), or another machine with a fresh heartbeat (`--force`
when a person knows that process is dead: a second run would otherwise race it). The released run is
marked abandoned. Exit 0 when the lease is free afterwards, 5 when the holder is alive (nothing changed).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from worker import exit_codes
from worker.config.settings import Settings
from worker.service import utc_now
from worker.state import Lease, StateStore
from worker.state.errors import UnlockRefusedError
from worker.state.leases import Alive, holder_is_dead, pid_alive, this_process
from worker.state.model import Holder

ATTEMPTS = 3
"""How often `unlock` re-reads a lease that changed between its check and its release."""


def judge(lease: Lease, now: datetime, ttl: timedelta, me: Holder, alive: Alive, force: bool) -> str:
    """Why `lease` may be released by `me` now (a line for the person); UnlockRefusedError naming the
    holder when it may not."""
    held = lease.holder
    name = lease.connection
    if held is not None and held.same_machine(me):
        if holder_is_dead(held, me, alive):
            return f"its process {held.pid} on this host is gone"
        raise UnlockRefusedError(
            lease,
            f"its process {held.pid} on this host is alive",
            f"stop that run first (`kill -TERM {held.pid}` checkpoints its page and exits), or let it "
            f"finish; --force does not override a process that is running here",
        )
    beat = lease.heartbeat_at if lease.heartbeat_at is not None else lease.expires_at - ttl
    silent = now - beat
    if silent >= ttl:
        return f"no heartbeat for {_seconds(silent)} (the lease TTL is {_seconds(ttl)})"
    if force:
        return f"--force: its last heartbeat was {_seconds(silent)} ago"
    where = f"on host {held.host}" if held is not None else "whose host is not recorded"
    raise UnlockRefusedError(
        lease,
        f"its last heartbeat was {_seconds(silent)} ago, so it may be alive (a process {where} cannot be "
        f"checked from here)",
        f"wait: its lease is free {_seconds(ttl - silent)} after that heartbeat if it died; if you know "
        f"the process is dead, `bant-sync unlock {name} --force`",
    )


def _seconds(span: timedelta) -> str:
    return f"{max(span.total_seconds(), 0.0):.0f} s"


def unlock(
    store: StateStore,
    connection: str,
    ttl: timedelta,
    *,
    force: bool = False,
    clock: Callable[[], datetime] = utc_now,
    me: Holder | None = None,
    alive: Alive = pid_alive,
) -> list[str]:
    """Release `connection`'s lease if its holder is dead (see `judge`); the lines to print. Raises
    UnlockRefusedError, changing nothing, when the holder is alive."""
    me = me or this_process()
    for _ in range(ATTEMPTS):
        lease = store.recorded_lease(connection)
        if lease is None:
            return [f"connection {connection!r}: the lease is free; nothing to unlock"]
        now = clock()
        reason = judge(lease, now, ttl, me, alive, force)
        if store.release_lease(lease):
            lines = [f"released the lease of connection {connection!r} held by {lease.describe()}: {reason}"]
            abandoned = store.mark_abandoned(connection, now)
            if abandoned:
                lines.append(f"marked abandoned: run {', run '.join(abandoned)}")
            lines.append("the next run starts at once and resumes from the last checkpoint")
            return lines
    return [f"connection {connection!r}: the lease kept changing while unlocking; see `bant-sync status`"]


def run_unlock(args: argparse.Namespace, settings: Settings) -> int:
    name = settings.connection(args.connection).name
    store = StateStore.open(settings.state.database_url())
    try:
        ttl = timedelta(seconds=settings.run.lease_ttl_seconds)
        for line in unlock(store, name, ttl, force=args.force):
            sys.stdout.write(f"{line}\n")
    finally:
        store.close()
    return exit_codes.OK


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "unlock",
        parents=[common],
        help="release a connection's lease that a dead run left behind (refuses a live holder)",
        description=(
            "Release the lease of CONNECTION when the run holding it is dead: its process is gone from "
            "this host, or (another host) its heartbeat is older than run.lease_ttl_seconds. A live "
            "holder is named and nothing changes (exit "
            f"{exit_codes.LEASE_HELD}). A run killed on this host is taken over by the next run anyway; "
            "unlock is for a holder on another host that you know is dead (--force) or to see who holds it. "
            "The released run is marked abandoned; the next run resumes from its last checkpoint."
        ),
    )
    parser.add_argument("connection", metavar="CONNECTION", help="the connection whose lease to release")
    parser.add_argument(
        "--force",
        action="store_true",
        help="release even though a holder on another host sent a heartbeat within the TTL (you know it is "
        "dead); never overrides a live process on this host",
    )
    parser.set_defaults(handler=run_unlock)
