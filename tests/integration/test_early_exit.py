"""Runs that end early (issue 12, item 2): a quota stop, a failure or a lost lease leaves no thread of the
run alive, run after run as in `serve`, and after a quota stop no further write reaches the CRM.

The sandbox runs in this process: its server answers each keep-alive connection on a thread of its own
(`Thread-N (process_request_thread)`) that ends when the client's socket is collected. Those are the
sandbox's, not the run's, and are left out of the thread counts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox import SandboxOptions
from sandbox.faults import FaultRule
from tests.integration.conftest import Env, sandbox_env
from worker.serve.scheduler import run_scheduled
from worker.state import Lease
from worker.sync.run_model import RunRequest, RunSummary

MAX_IN_FLIGHT = 2
WRITES = {"salesforce": r"/composite/sobjects", "hubspot": r"/batch/(update|create)$"}
"""Every write a run makes: Salesforce sObject Collections, HubSpot batch update/create."""
HUBSPOT_DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}


def _configure(env: Env, page: int) -> None:
    """`page` deals a worker page on both CRMs, and at most MAX_IN_FLIGHT batch calls at once."""
    text = env.config.read_text(encoding="utf-8")
    text = text.replace(
        'crm = "hubspot"\n', f'crm = "hubspot"\nmax_in_flight = {MAX_IN_FLIGHT}\ndeals_per_page = {page}\n'
    )
    text = text.replace(
        'crm = "salesforce"\n',
        f'crm = "salesforce"\nmax_in_flight = {MAX_IN_FLIGHT}\nquery_batch_size = {page}\n',
    )
    env.config.write_text(text, encoding="utf-8")
    env.restart()


@pytest.fixture(params=["salesforce", "hubspot"])
def paged_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """1,500 deals in two worker pages of up to 1,000: while page 1 is written, page 2 waits read ahead
    and the reader is done, so a run that ends in page 1 leaves the read-ahead waiting to hand over."""
    options = SandboxOptions(deals=1500, seed_value=11, enforce_rate_limits=False)
    with sandbox_env(str(request.param), tmp_path, options) as env:
        _configure(env, 1000)
        yield env


def _run_threads() -> set[str]:
    """The live threads, less the sandbox's connection threads."""
    return {
        f"{t.name}#{t.ident}"
        for t in threading.enumerate()
        if not t.name.endswith("(process_request_thread)")
    }


def _quota_rule(crm: str, path: str, nth: int) -> FaultRule:
    """From the `nth` call on `path`, every call meets the CRM's daily quota stop."""
    if crm == "salesforce":
        return FaultRule(
            kind="error_code",
            crm=crm,
            path=path,
            nth=nth,
            times=1_000_000,
            error_code="REQUEST_LIMIT_EXCEEDED",
            message="TotalRequests Limit exceeded.",
        )
    return FaultRule(
        kind="status", crm=crm, path=path, nth=nth, times=1_000_000, status=429, body=HUBSPOT_DAILY
    )


def _scheduled_full_sweep(env: Env) -> RunSummary:
    """A full sweep as `serve`'s schedule runs it (the job function its scheduler calls)."""
    summary = run_scheduled(env.worker, env.crm, "full")
    assert summary is not None
    return summary


def _quota_stop(env: Env) -> RunSummary:
    env.sb.add_fault(_quota_rule(env.crm, WRITES[env.crm], 2))
    return _scheduled_full_sweep(env)


def _failure(env: Env) -> RunSummary:
    """Every write from the second on is refused for good: no access (Salesforce), a 403 (HubSpot)."""
    path = WRITES[env.crm]
    denied = FaultRule(kind="status", status=403, crm=env.crm, path=path)
    if env.crm == "salesforce":
        access = {"errorCode": "INSUFFICIENT_ACCESS_OR_READONLY", "message": "insufficient access rights"}
        denied = replace(denied, status=400, body=[access])
    env.sb.add_fault(replace(denied, nth=2, times=1_000_000))
    return _scheduled_full_sweep(env)


def _lost_lease(env: Env) -> RunSummary:
    """After the first page, another run takes the lease over (as if this one had been given up for dead):
    the next checkpoint finds it lost."""
    store, taken = env.worker.store, list[Lease]()

    def take_over(read: int, written: int) -> None:
        if not taken:
            later = env.time.now() + timedelta(hours=2)
            taken.append(store.acquire_lease(env.crm, "other-run", later, timedelta(minutes=5)))

    try:
        return env.worker.run(RunRequest(env.crm, mode="full"), progress=take_over)
    finally:
        for lease in taken:
            store.release_lease(lease)


ENDINGS = [("quota", _quota_stop, "quota_stopped"), ("failure", _failure, "failed")] * 3 + [
    ("lost-lease", _lost_lease, "failed")
]
"""Each quota stop or failure lands a batch or two; the lost lease, which writes every page before it
finds out at the checkpoint, comes last."""


def test_runs_that_end_early_leave_no_thread_behind(paged_env: Env) -> None:
    """A `serve`-like loop of runs ending in a quota stop, a failure and a lost lease, each in the middle
    of its pages: after each, exactly the threads alive before the first remain."""
    env = paged_env
    before = _run_threads()
    for name, end, status in ENDINGS:
        summary = end(env)
        env.sb.clear_faults()
        assert summary.status == status, (name, summary.error)
        assert _run_threads() == before, f"after a run ending in {name}"


@pytest.fixture(params=["salesforce", "hubspot"])
def wide_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """2,500 deals in worker pages of 2,000: a page's status and task writes span 5 to 20 batch calls."""
    options = SandboxOptions(deals=2500, seed_value=11, enforce_rate_limits=False)
    with sandbox_env(str(request.param), tmp_path, options) as env:
        _configure(env, 2000)
        yield env


TARGETS = {
    "salesforce": {"status": (r"/composite/sobjects$", 2), "tasks": (r"/composite/sobjects/Task", 2)},
    "hubspot": {"status": (r"/deals/batch/update$", 2), "tasks": (r"/tasks/batch/create$", 2)},
}


@pytest.mark.parametrize("target", ["status", "tasks"])
def test_after_a_quota_stop_no_write_is_sent(wide_env: Env, target: str) -> None:
    """The quota stop comes on the second batch call of the page's status (or task) writes and holds for
    every call after it. The run stops for quota; after the first refused call the CRM sees at most the
    calls that were already in flight beside it (MAX_IN_FLIGHT - 1), never a batch sent afterwards."""
    env = wide_env
    path, nth = TARGETS[env.crm][target]
    env.sb.add_fault(_quota_rule(env.crm, path, nth))
    summary = env.run("full")
    assert summary.status == "quota_stopped", summary.error
    log = env.sb.requests()
    first = next(i for i, entry in enumerate(log) if entry.get("faults"))
    writes = [
        f"{entry['method']} {entry['path']}"
        for entry in log[first + 1 :]
        if entry["method"] in {"POST", "PATCH"}
        and "/search" not in str(entry["path"])
        and "/batch/read" not in str(entry["path"])
    ]
    assert len(writes) <= MAX_IN_FLIGHT - 1, writes
