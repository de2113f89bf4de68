"""After a real `kill -9` of a `bant-sync sync` process, how soon may the next run start? On the same host
at once: the dead holder's PID is gone, so its lease is taken over (even a 15-minute lease). On another
host, once the dead run's lease TTL has passed since its last heartbeat (60 s with the default settings):
nobody can probe a PID there. Asserted on exit codes and lease state; the clock is injected where time
must pass."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxOptions
from tests.integration.conftest import CrmView
from tests.reliability.harness import assert_consistent, kill_after, sync_process
from worker import exit_codes
from worker.config.loader import load_settings
from worker.service import Worker
from worker.state import Lease, LeaseHeldError, StateStore
from worker.sync.run_model import RunRequest

DEALS = 300
KILL_AT = {"salesforce": 4, "hubspot": 6}
"""A request after the lease was taken and before the run ends (a few writes in)."""
LONG_TTL = 900
"""The killed run's lease TTL on the same host: far longer than the test, so expiry cannot explain a
takeover."""
OTHER_HOST = "bant-sync-elsewhere"
PROBE_TTL = timedelta(seconds=1)


@pytest.fixture(params=["salesforce", "hubspot"])
def crm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    options = SandboxOptions(deals=DEALS, seed_value=11, latency_ms=15, enforce_rate_limits=False)
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        yield sb, config


def _recorded(config: Path, crm: str) -> Lease | None:
    store = StateStore.open(load_settings(str(config), environ={}).state.database_url())
    try:
        return store.recorded_lease(crm)
    finally:
        store.close()


def _killed(sb: Sandbox, process: subprocess.Popen[bytes], crm: str, config: Path) -> Lease:
    assert kill_after(sb, process, KILL_AT[crm]), "the sync finished before its kill point"
    lease = _recorded(config, crm)
    assert lease is not None and lease.holder is not None, "the killed run left no lease"
    return lease


def test_after_a_sigkill_the_next_run_on_this_host_starts_at_once(
    sandbox: tuple[Sandbox, Path], crm: str
) -> None:
    """A sync killed -9 while holding a 15-minute lease: the next `bant-sync sync` process on this host
    takes the lease over at once (exit 0, not 5 "lease held"), with the next fencing token, and leaves
    every deal right."""
    sb, config = sandbox
    dead = _killed(sb, sync_process(config, crm, lease_ttl=LONG_TTL), crm, config)
    assert dead.holder is not None and dead.holder.pid > 0
    rerun = sync_process(config, crm, lease_ttl=LONG_TTL)
    assert rerun.wait(timeout=120) == exit_codes.OK
    assert _recorded(config, crm) is None, "the rerun did not release its lease"
    store = StateStore.open(load_settings(str(config), environ={}).state.database_url())
    try:
        killed_run, finished = sorted(store.list_runs(crm), key=lambda r: r.started_at)
        assert (killed_run.run_id, killed_run.status) == (dead.run_id, "abandoned")
        assert finished.status == "succeeded"
        taken = store.acquire_lease(crm, "probe", finished.finished_at or finished.started_at, PROBE_TTL)
        assert taken.token == dead.token + 2, "the rerun did not take the next token after the dead run's"
    finally:
        store.close()
    assert_consistent(CrmView(sb, crm))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_after_a_sigkill_on_another_host_the_lease_is_free_once_its_ttl_passed(
    sandbox: tuple[Sandbox, Path], crm: str
) -> None:
    """A sync on another host (default settings: 60 s lease) is killed -9: a run here is refused while
    the dead run's last heartbeat is younger than the TTL, and starts the moment the TTL has passed."""
    sb, config = sandbox
    dead = _killed(sb, sync_process(config, crm, lease_ttl=None, host=OTHER_HOST), crm, config)
    assert dead.holder is not None and dead.holder.host == OTHER_HOST and dead.heartbeat_at is not None
    settings = load_settings(str(config), environ={})
    ttl = timedelta(seconds=settings.run.lease_ttl_seconds)
    assert dead.expires_at - dead.heartbeat_at == ttl == timedelta(seconds=60)
    clock = Clock(dead.heartbeat_at + ttl - timedelta(seconds=1))
    worker = Worker(settings, clock=clock, sleep=clock.sleep)
    try:
        with pytest.raises(LeaseHeldError) as caught:
            worker.run(RunRequest(crm, mode="full"))
        assert f"host {OTHER_HOST}, pid {dead.holder.pid}" in str(caught.value)
        clock.now = dead.heartbeat_at + ttl
        summary = worker.run(RunRequest(crm, mode="full"))
        assert summary.status == "succeeded", summary.error
    finally:
        worker.close()
    assert_consistent(CrmView(sb, crm))
