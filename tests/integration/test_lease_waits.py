"""A long wait inside a run (Retry-After, backoff) is cut into slices of at most a third of the lease TTL;
the run checks its lease after each slice and verifies it in the state store after the wait, so it never
writes on a lease it lost while it waited. No heartbeat thread outlives its run, whatever way it ends."""

from __future__ import annotations

import threading

from sandbox.faults import FaultRule
from tests.integration.conftest import Env
from worker.service import Worker
from worker.sync.run_model import RunRequest

RETRY_AFTER = 50


def _heartbeat_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lease-heartbeat-")]


def _refuse_status_writes(env: Env) -> None:
    path, status = (
        (r"/composite/sobjects$", 503) if env.crm == "salesforce" else (r"/deals/batch/update$", 429)
    )
    env.sb.add_fault(
        FaultRule(
            kind="status",
            crm=env.crm,
            path=path,
            status=status,
            headers={"Retry-After": str(RETRY_AFTER)},
            times=1,
        )
    )


def _take_the_lease_away(env: Env, worker: Worker) -> None:
    """What `bant-sync unlock --force` does from another shell: release the run's lease."""
    held = worker.store.recorded_lease(env.crm)
    assert held is not None
    assert worker.store.release_lease(held)


def test_a_long_wait_is_sliced_and_a_lease_lost_meanwhile_stops_the_run(env: Env) -> None:
    """A 50 s Retry-After is waited as 20 + 20 + 10 s (TTL 60 s); the lease released during it is found
    when the run verifies it after the wait: the run fails "lease lost" and sends nothing more."""
    _refuse_status_writes(env)
    waits: list[float] = []
    writes_at_wait: list[int] = []

    def sleep(seconds: float) -> None:
        if seconds >= 1:
            waits.append(seconds)
            if len(waits) == 1:
                writes_at_wait.append(env.writes())
                _take_the_lease_away(env, worker)
        env.time.sleep(seconds)

    worker = Worker(env.worker.settings, env.worker.store, clock=env.time.now, sleep=sleep)
    summary = worker.run(RunRequest(env.crm, mode="full"))
    assert summary.status == "failed" and "lease lost" in (summary.error or ""), summary.error
    assert waits == [20.0, 20.0, 10.0]
    assert env.writes() == writes_at_wait[0], "a write was sent after the lease was lost"
    assert _heartbeat_threads() == []
    again = env.run("full")
    assert again.status == "succeeded", again.error


def test_a_lease_the_heartbeat_found_lost_stops_the_run_after_the_current_slice(env: Env) -> None:
    """When the heartbeat thread finds the lease taken during a wait, the run stops after that slice of
    the wait instead of sitting out the rest of it."""
    _refuse_status_writes(env)
    waits: list[float] = []
    beat = threading.Event()
    beaten = threading.Event()

    def heartbeat_wait(stopped: threading.Event, seconds: float) -> bool:
        while not (beat.is_set() or stopped.is_set()):
            stopped.wait(0.01)
        if stopped.is_set():
            return True
        beat.clear()
        beaten.set()
        return False

    def sleep(seconds: float) -> None:
        if seconds >= 1:
            waits.append(seconds)
            if len(waits) == 1:
                _take_the_lease_away(env, worker)
                beat.set()
                assert beaten.wait(10)
                heartbeat = worker.heartbeats.of(env.crm)
                assert heartbeat is not None
                for _ in range(1000):
                    if not heartbeat.alive:
                        break
                    threading.Event().wait(0.01)
                assert heartbeat.lost is not None
        env.time.sleep(seconds)

    worker = Worker(
        env.worker.settings,
        env.worker.store,
        clock=env.time.now,
        sleep=sleep,
        heartbeat_wait=heartbeat_wait,
    )
    summary = worker.run(RunRequest(env.crm, mode="full"))
    assert summary.status == "failed" and "lease lost" in (summary.error or ""), summary.error
    assert waits == [20.0]
    assert _heartbeat_threads() == []


def test_no_heartbeat_outlives_its_run(env: Env) -> None:
    """After a run that succeeds and one that fails, no heartbeat thread is left and none is registered."""
    assert env.run("full").status == "succeeded"
    assert _heartbeat_threads() == [] and env.worker.heartbeats.running() == []
    env.sb.add_fault(FaultRule(kind="status", crm=env.crm, status=401, times=50))
    assert env.run("full").status == "failed"
    assert _heartbeat_threads() == [] and env.worker.heartbeats.running() == []
