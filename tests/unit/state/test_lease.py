"""The lease: single flight per connection, expiry, fencing tokens, and taking over a dead holder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from worker.state import LeaseHeldError, LeaseLostError, RunRecord, StateStore
from worker.state.leases import pid_alive
from worker.state.model import Holder

from .conftest import T0

TTL = timedelta(minutes=10)


def test_first_acquisition_gets_token_one(store: StateStore) -> None:
    """A fresh connection's lease is granted with token 1 and expiry now + ttl."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    assert (lease.connection, lease.run_id, lease.token, lease.expires_at) == ("sf", "run-1", 1, T0 + TTL)
    assert store.lease_holder("sf", T0) == lease


def test_second_run_is_told_who_holds_the_lease(store: StateStore) -> None:
    """While a lease is live another run gets LeaseHeldError naming the holder and its expiry."""
    store.acquire_lease("sf", "run-1", T0, TTL)
    with pytest.raises(LeaseHeldError) as caught:
        store.acquire_lease("sf", "run-2", T0 + TTL - timedelta(microseconds=1), TTL)
    assert caught.value.holder_run_id == "run-1"
    assert caught.value.expires_at == T0 + TTL
    assert "run-1" in str(caught.value) and "'sf'" in str(caught.value)
    holder = store.lease_holder("sf", T0)
    assert holder is not None and holder.run_id == "run-1"


def test_connections_are_independent(store: StateStore) -> None:
    """A lease on one connection does not block another connection."""
    a = store.acquire_lease("sf", "run-1", T0, TTL)
    b = store.acquire_lease("hubspot", "run-2", T0, TTL)
    assert (a.token, b.token) == (1, 1)


def test_expired_lease_is_taken_over_with_a_higher_token(store: StateStore) -> None:
    """At or after expiry another run takes the lease; its token exceeds the old one."""
    old = store.acquire_lease("sf", "run-1", T0, TTL)
    assert store.lease_holder("sf", T0 + TTL) is None
    new = store.acquire_lease("sf", "run-2", T0 + TTL, TTL)
    assert new.token > old.token
    assert store.lease_holder("sf", T0 + TTL) == new


def test_tokens_keep_growing_across_releases(store: StateStore) -> None:
    """Release then re-acquire never reuses a token."""
    tokens = []
    for n in range(4):
        lease = store.acquire_lease("sf", f"run-{n}", T0 + timedelta(minutes=n), TTL)
        tokens.append(lease.token)
        store.release_lease(lease)
        assert store.lease_holder("sf", T0 + timedelta(minutes=n)) is None
    assert tokens == [1, 2, 3, 4]


def test_same_run_reacquiring_supersedes_its_old_lease(store: StateStore) -> None:
    """The same run acquiring again gets a new token, and its earlier Lease is stale."""
    first = store.acquire_lease("sf", "run-1", T0, TTL)
    second = store.acquire_lease("sf", "run-1", T0, TTL)
    assert second.token == first.token + 1
    with pytest.raises(LeaseLostError):
        store.renew_lease(first, T0, TTL)


def test_renew_extends_expiry_and_keeps_token(store: StateStore) -> None:
    """Renewal moves expiry to now + ttl and keeps the fencing token."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    renewed = store.renew_lease(lease, T0 + timedelta(minutes=8), TTL)
    assert renewed.token == lease.token
    assert renewed.expires_at == T0 + timedelta(minutes=18)
    with pytest.raises(LeaseHeldError):
        store.acquire_lease("sf", "run-2", T0 + timedelta(minutes=15), TTL)


def test_renew_after_expiry_succeeds_if_nobody_took_over(store: StateStore) -> None:
    """An expired lease that nobody took is still current: renewal succeeds."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    renewed = store.renew_lease(lease, T0 + 2 * TTL, TTL)
    assert renewed.expires_at == T0 + 3 * TTL


def test_renew_after_takeover_raises_lease_lost(store: StateStore) -> None:
    """Once another run took the expired lease, the old holder's renewal fails naming the new holder."""
    old = store.acquire_lease("sf", "run-1", T0, TTL)
    store.acquire_lease("sf", "run-2", T0 + TTL, TTL)
    with pytest.raises(LeaseLostError) as caught:
        store.renew_lease(old, T0 + TTL, TTL)
    assert caught.value.holder_run_id == "run-2"
    assert "run-1" in str(caught.value) and "run-2" in str(caught.value)


def test_renew_after_release_raises_lease_lost(store: StateStore) -> None:
    """A released lease cannot be renewed."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    store.release_lease(lease)
    with pytest.raises(LeaseLostError):
        store.renew_lease(lease, T0, TTL)


def test_release_of_a_lease_no_longer_ours_is_a_no_op(store: StateStore) -> None:
    """Releasing a superseded lease leaves the new holder's lease alone."""
    old = store.acquire_lease("sf", "run-1", T0, TTL)
    new = store.acquire_lease("sf", "run-2", T0 + TTL, TTL)
    store.release_lease(old)
    assert store.lease_holder("sf", T0 + TTL) == new


def test_times_in_other_zones_are_stored_as_utc(store: StateStore) -> None:
    """A tz-aware time in another zone means the same instant and comes back in UTC."""
    paris = timezone(timedelta(hours=1))
    lease = store.acquire_lease("sf", "run-1", T0.astimezone(paris), TTL)
    held = store.lease_holder("sf", T0)
    assert held is not None
    assert held.expires_at == T0 + TTL
    assert held.expires_at.tzinfo is UTC
    assert lease.expires_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("now", "ttl", "message"),
    [
        (datetime(2025, 3, 3, 9, 0), TTL, "timezone-aware"),
        (T0, timedelta(0), "ttl must be positive"),
        (T0, timedelta(seconds=-1), "ttl must be positive"),
    ],
    ids=["naive-now", "zero-ttl", "negative-ttl"],
)
def test_bad_times_are_refused(store: StateStore, now: datetime, ttl: timedelta, message: str) -> None:
    """Naive datetimes and non-positive ttls are refused before anything is written."""
    with pytest.raises(ValueError, match=message):
        store.acquire_lease("sf", "run-1", now, ttl)
    assert store.lease_holder("sf", T0) is None


HERE = Holder("host-a", 4242, "pid:[1]", "instance-1")
"""A holder on the test's pretend machine; `me` of the contender varies per test."""


def _dead(pid: int) -> bool:
    return False


def _alive(pid: int) -> bool:
    return True


def test_the_lease_row_names_its_holder_and_heartbeat(store: StateStore) -> None:
    """Acquiring records the holder's host and PID and the heartbeat; renewing moves the heartbeat."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL, me=HERE)
    assert (lease.holder, lease.heartbeat_at) == (HERE, T0)
    renewed = store.renew_lease(lease, T0 + timedelta(seconds=20), TTL)
    recorded = store.recorded_lease("sf")
    assert recorded == renewed
    assert recorded is not None and recorded.heartbeat_at == T0 + timedelta(seconds=20)


def test_by_default_the_holder_is_this_process(store: StateStore) -> None:
    """Without `me`, the lease names this process: its host name and PID."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    assert lease.holder is not None
    assert (lease.holder.host, lease.holder.pid) == (socket.gethostname(), os.getpid())


@pytest.mark.parametrize(
    ("me", "alive", "taken_over"),
    [
        (Holder("host-a", 5000, "pid:[1]", "instance-2"), _dead, True),
        (Holder("host-a", 5000, "pid:[1]", "instance-2"), _alive, False),
        (Holder("host-a", 4242, "pid:[1]", "instance-2"), _alive, True),
        (Holder("host-a", 4242, "pid:[1]", "instance-1"), _alive, False),
        (Holder("host-b", 5000, "pid:[1]", "instance-2"), _dead, False),
        (Holder("host-a", 5000, "pid:[2]", "instance-2"), _dead, False),
    ],
    ids=[
        "same-host-pid-dead",
        "same-host-pid-alive",
        "pid-reused-by-a-restarted-process",
        "another-run-of-the-same-process",
        "other-host-is-never-probed",
        "other-pid-namespace-is-never-probed",
    ],
)
def test_a_dead_holder_on_this_machine_is_taken_over_at_once(
    store: StateStore, me: Holder, alive: Callable[[int], bool], taken_over: bool
) -> None:
    """Long before expiry, a run takes over the lease of a holder whose process is gone from this machine
    (a bumped token makes the dead run's lease stale); a live holder, or one on another machine or in
    another PID namespace, keeps it."""
    dead = store.acquire_lease("sf", "run-1", T0, TTL, me=HERE)
    soon = T0 + timedelta(seconds=1)
    if taken_over:
        lease = store.acquire_lease("sf", "run-2", soon, TTL, me=me, alive=alive)
        assert lease.token == dead.token + 1 and lease.holder == me
        with pytest.raises(LeaseLostError):
            store.renew_lease(dead, soon, TTL)
    else:
        with pytest.raises(LeaseHeldError) as caught:
            store.acquire_lease("sf", "run-2", soon, TTL, me=me, alive=alive)
        message = str(caught.value)
        assert "run run-1 (host host-a, pid 4242, last heartbeat 2025-03-03T09:00:00+00:00)" in message
        assert caught.value.lease == dead


def test_another_hosts_dead_holder_is_free_once_the_ttl_passes(store: StateStore) -> None:
    """A holder on another machine cannot be probed: its lease is free exactly when its heartbeat is a
    TTL old."""
    store.acquire_lease("sf", "run-1", T0, TTL, me=HERE)
    elsewhere = Holder("host-b", 5000, "pid:[1]", "instance-2")
    with pytest.raises(LeaseHeldError):
        store.acquire_lease("sf", "run-2", T0 + TTL - timedelta(microseconds=1), TTL, me=elsewhere)
    lease = store.acquire_lease("sf", "run-2", T0 + TTL, TTL, me=elsewhere)
    assert lease.holder == elsewhere


def test_release_forgets_the_holder(store: StateStore) -> None:
    """A released lease names no holder; releasing a stale lease reports that nothing was released."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL, me=HERE)
    assert store.release_lease(lease) is True
    assert store.recorded_lease("sf") is None
    assert store.release_lease(lease) is False


def test_pid_alive_on_real_processes() -> None:
    """This process is alive; a killed child is dead while it is a zombie and once it is reaped."""
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        child.send_signal(signal.SIGKILL)
        deadline = 1000
        while pid_alive(child.pid) and deadline:
            deadline -= 1
            threading.Event().wait(0.005)
        assert not pid_alive(child.pid), "a killed, unreaped child still counts as alive"
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)


@pytest.mark.parametrize("how", ["dead-holder", "expired"])
def test_a_run_whose_lease_is_taken_over_is_abandoned(store: StateStore, how: str) -> None:
    """Taking over a dead holder's (or an expired) lease marks its run, still "running", abandoned; a run
    that finished keeps its status."""
    store.start_run(RunRecord("run-1", "sf", "cli", "full", T0))
    store.start_run(RunRecord("run-0", "sf", "cli", "full", T0 - TTL))
    store.finish_run("run-0", T0, "succeeded", {}, 0, None)
    store.acquire_lease("sf", "run-1", T0, TTL, me=HERE)
    me = Holder("host-a", 5000, "pid:[1]", "instance-2")
    at = T0 + timedelta(seconds=1) if how == "dead-holder" else T0 + TTL
    store.acquire_lease("sf", "run-2", at, TTL, me=me, alive=_dead)
    statuses = {r.run_id: r.status for r in store.list_runs("sf")}
    assert statuses == {"run-0": "succeeded", "run-1": "abandoned"}
