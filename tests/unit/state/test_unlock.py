"""`bant-sync unlock`: releases a dead holder's lease, refuses a live one naming it, `--force` only for
another host's holder. On both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from worker.cli.unlock import unlock
from worker.state import RunRecord, StateStore
from worker.state.errors import UnlockRefusedError
from worker.state.model import Holder

from .conftest import T0

TTL = timedelta(seconds=60)
HOLDER = Holder("host-a", 4242, "pid:[1]", "instance-1")
ME = Holder("host-a", 5000, "pid:[1]", "instance-2")
OTHER_HOST = Holder("host-b", 5000, "pid:[1]", "instance-2")


def _dead(pid: int) -> bool:
    return False


def _alive(pid: int) -> bool:
    return True


def _held(store: StateStore) -> None:
    store.start_run(RunRecord("run-1", "sf", "cli", "full", T0))
    store.acquire_lease("sf", "run-1", T0, TTL, me=HOLDER)


def test_a_free_lease_needs_no_unlock(store: StateStore) -> None:
    """With nobody holding the lease, unlock says so and changes nothing."""
    lines = unlock(store, "sf", TTL, clock=lambda: T0, me=ME, alive=_alive)
    assert lines == ["connection 'sf': the lease is free; nothing to unlock"]


def test_a_dead_holder_on_this_host_is_released_and_its_run_abandoned(store: StateStore) -> None:
    """A holder whose PID is gone from this host is released at once; its run is marked abandoned and the
    next run takes the lease with a higher token."""
    _held(store)
    lines = unlock(store, "sf", TTL, clock=lambda: T0 + timedelta(seconds=5), me=ME, alive=_dead)
    assert lines[0].startswith(
        "released the lease of connection 'sf' held by run run-1 (host host-a, pid 4242"
    )
    assert "its process 4242 on this host is gone" in lines[0]
    assert "marked abandoned: run run-1" in lines
    assert store.recorded_lease("sf") is None
    assert [r.status for r in store.list_runs("sf")] == ["abandoned"]
    assert store.acquire_lease("sf", "run-2", T0 + timedelta(seconds=5), TTL, me=ME).token == 2


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_a_live_holder_on_this_host_is_refused_even_with_force(store: StateStore, force: bool) -> None:
    """A holder alive on this host is named (run, host, pid, heartbeat) and kept, --force or not: exit 5,
    and the hint says to stop that process."""
    _held(store)
    with pytest.raises(UnlockRefusedError) as caught:
        unlock(store, "sf", TTL, force=force, clock=lambda: T0 + timedelta(hours=1), me=ME, alive=_alive)
    error = caught.value
    message = error.render()
    assert "refusing to unlock connection 'sf': run run-1 (host host-a, pid 4242, last heartbeat " in message
    assert "its process 4242 on this host is alive" in message and "kill -TERM 4242" in message
    assert error.exit_code == 5
    held = store.recorded_lease("sf")
    assert held is not None and held.run_id == "run-1"


def test_another_hosts_holder_with_a_fresh_heartbeat_needs_force(store: StateStore) -> None:
    """Another host's holder that beat within the TTL is refused (the hint names --force); --force
    releases it."""
    _held(store)
    later = T0 + timedelta(seconds=30)
    with pytest.raises(UnlockRefusedError) as caught:
        unlock(store, "sf", TTL, clock=lambda: later, me=OTHER_HOST, alive=_dead)
    message = caught.value.render()
    assert "last heartbeat was 30 s ago" in message and "on host host-a" in message
    assert "bant-sync unlock sf --force" in message
    assert store.recorded_lease("sf") is not None
    lines = unlock(store, "sf", TTL, force=True, clock=lambda: later, me=OTHER_HOST, alive=_dead)
    assert "--force: its last heartbeat was 30 s ago" in lines[0]
    assert store.recorded_lease("sf") is None


def test_another_hosts_silent_holder_is_released_without_force(store: StateStore) -> None:
    """Another host's holder with no heartbeat for a TTL is dead by the lease's own rule: released."""
    _held(store)
    lines = unlock(store, "sf", TTL, clock=lambda: T0 + TTL, me=OTHER_HOST, alive=_alive)
    assert "no heartbeat for 60 s (the lease TTL is 60 s)" in lines[0]
    assert store.recorded_lease("sf") is None
