"""The lease heartbeat: renews every third of the TTL on its own thread, independent of page progress; finds
a lost lease and ends; survives a state-store hiccup; never outlives stop(). Its waits are injected (the
test lets each beat happen), so nothing sleeps for real."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from worker.state import LeaseHeldError, LeaseLostError, StateStore, StateUnavailableError
from worker.state.heartbeat import Heartbeat, Heartbeats
from worker.state.model import Holder, Lease

from .conftest import T0

TTL = timedelta(seconds=60)
ELSEWHERE = Holder("host-b", 5000, "pid:[1]", "other")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Ticks:
    """An injected heartbeat wait: each wait holds the heartbeat until the test calls `tick()` (one beat)
    or the heartbeat is stopped."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._allowed = 0
        self._cond = threading.Condition()

    def __call__(self, stopped: threading.Event, seconds: float) -> bool:
        with self._cond:
            self.waits.append(seconds)
            self._cond.notify_all()
            while not (self._allowed or stopped.is_set()):
                self._cond.wait(0.01)
            if stopped.is_set():
                return True
            self._allowed -= 1
            return False

    def tick(self, heartbeat: Heartbeat) -> None:
        """Let one beat happen and wait until it is done (the heartbeat waits again, or has ended)."""
        with self._cond:
            entered = len(self.waits)
            self._allowed += 1
            self._cond.notify_all()
            for _ in range(1000):
                if len(self.waits) > entered or not heartbeat.alive:
                    return
                self._cond.wait(0.01)
        raise AssertionError("the heartbeat did not beat")


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lease-heartbeat-")]


def test_the_heartbeat_renews_every_third_of_the_ttl(store: StateStore) -> None:
    """With no page progress at all, each beat moves the lease's expiry and heartbeat; another run (even
    on another host) stays out long after the first TTL has passed."""
    clock, ticks = Clock(), Ticks()
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    heartbeat = Heartbeat(store, lease, TTL, clock, wait=ticks).start()
    try:
        for beat in range(1, 6):
            clock.now = T0 + beat * timedelta(seconds=20)
            ticks.tick(heartbeat)
            recorded = store.recorded_lease("sf")
            assert recorded is not None
            assert (recorded.heartbeat_at, recorded.expires_at) == (clock.now, clock.now + TTL)
        assert heartbeat.beats == 5 and set(ticks.waits) == {20.0}
        with pytest.raises(LeaseHeldError):
            store.acquire_lease("sf", "run-2", T0 + 2 * TTL, TTL, me=ELSEWHERE)
        heartbeat.check()
    finally:
        heartbeat.stop()
    assert not heartbeat.alive and _threads() == []


def test_a_heartbeat_that_finds_the_lease_lost_ends_and_the_run_is_told(store: StateStore) -> None:
    """Once another run took the lease over, the next beat records LeaseLostError, the thread ends, and
    check() (what the run calls at its checks) raises it; the new holder's lease is untouched."""
    clock, ticks = Clock(), Ticks()
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    heartbeat = Heartbeat(store, lease, TTL, clock, wait=ticks).start()
    try:
        taken = store.acquire_lease("sf", "run-2", T0 + TTL, TTL, me=ELSEWHERE)
        clock.now = T0 + TTL
        ticks.tick(heartbeat)
        assert not heartbeat.alive
        with pytest.raises(LeaseLostError) as caught:
            heartbeat.check()
        assert caught.value.holder_run_id == "run-2"
        with pytest.raises(LeaseLostError):
            heartbeat.beat()
        assert store.recorded_lease("sf") == taken
    finally:
        heartbeat.stop()
    assert _threads() == []


class HiccupStore:
    """A store whose next renewal fails as an unreachable database would, once."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.fail_next = True

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        if self.fail_next:
            self.fail_next = False
            raise StateUnavailableError("the state store did not answer")
        return self.store.renew_lease(lease, now, ttl)


def test_a_state_store_hiccup_is_retried_at_the_next_beat(store: StateStore) -> None:
    """A renewal that fails because the store is unavailable is not a lost lease: the heartbeat goes on
    and the next beat renews."""
    clock, ticks = Clock(), Ticks()
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    flaky = HiccupStore(store)
    heartbeat = Heartbeat(flaky, lease, TTL, clock, wait=ticks).start()  # type: ignore[arg-type]
    try:
        clock.now = T0 + timedelta(seconds=20)
        ticks.tick(heartbeat)
        assert heartbeat.alive and heartbeat.beats == 0
        heartbeat.check()
        clock.now = T0 + timedelta(seconds=40)
        ticks.tick(heartbeat)
        assert heartbeat.beats == 1
        recorded = store.recorded_lease("sf")
        assert recorded is not None and recorded.expires_at == T0 + timedelta(seconds=100)
    finally:
        heartbeat.stop()


def test_stop_ends_the_thread_while_it_waits_with_the_default_wait(store: StateStore) -> None:
    """With the real wait (20 s between beats), stop() wakes the heartbeat and joins it at once."""
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    heartbeats = Heartbeats()
    heartbeat = heartbeats.start(store, lease, TTL, Clock())
    assert heartbeat.alive and heartbeats.of("sf") is heartbeat
    heartbeats.stop(heartbeat)
    assert not heartbeat.alive and heartbeats.of("sf") is None and _threads() == []
    heartbeat.stop()


def test_a_non_positive_ttl_is_refused(store: StateStore) -> None:
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    with pytest.raises(ValueError, match="ttl must be positive"):
        Heartbeat(store, lease, timedelta(0), Clock())
