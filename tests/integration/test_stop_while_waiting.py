"""A stop asked while a run waits (Retry-After, backoff, pacing) ends the run at once, at its last
checkpoint, instead of after the wait; the next run finishes the job with no task twice."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from sandbox.faults import FaultRule
from tests.integration.conftest import Env
from worker.errors import RunStopped
from worker.service import Worker
from worker.sync.run_model import RunRequest

UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}


def test_a_stop_during_a_retry_wait_stops_the_run_and_the_next_run_completes(env: Env) -> None:
    """Every status write is refused with Retry-After 30 (Salesforce 503, HubSpot 429); the stop comes
    during the first wait. The run ends `stopped` after that one wait, and a rerun leaves one task per
    unqualified deal."""
    path, status = (
        (r"/composite/sobjects$", 503) if env.crm == "salesforce" else (r"/deals/batch/update$", 429)
    )
    env.sb.add_fault(
        FaultRule(kind="status", crm=env.crm, path=path, status=status, headers={"Retry-After": "30"})
    )
    waits: list[float] = []
    stop = threading.Event()

    def stop_during_the_wait(seconds: float) -> None:
        waits.append(seconds)
        stop.set()

    worker = Worker(env.worker.settings, env.worker.store, sleep=stop_during_the_wait, stop=stop)
    summary = worker.run(RunRequest(env.crm, mode="full"))
    assert summary.status == "stopped", summary.error
    assert waits == [min(30.0, worker.max_wait)]
    env.sb.clear_faults()
    again = env.run("full")
    assert again.status == "succeeded", again.error
    open_deals = {i: d for i, d in env.view.deals().items() if d["open"]}
    unqualified = {i for i, d in open_deals.items() if d["status"] in UNQUALIFIED}
    assert unqualified
    assert Counter(t["deal_id"] for t in env.view.tasks() if t["open"]) == dict.fromkeys(unqualified, 1)


def test_the_default_wait_wakes_on_stop(env: Env) -> None:
    """Without an injected sleep a 30 s wait returns as soon as another thread asks the worker to stop; a
    short one (rate-limit pacing) is slept out even then, so a stopping run still finishes its page."""
    worker = Worker(env.worker.settings, env.worker.store)
    threading.Timer(0.05, worker.stop.set).start()
    began = time.monotonic()
    with pytest.raises(RunStopped):
        worker.sleep(30)
    assert time.monotonic() - began < 10
    with pytest.raises(RunStopped):
        worker.sleep(30)
    began = time.monotonic()
    worker.sleep(0.02)
    assert time.monotonic() - began >= 0.02
