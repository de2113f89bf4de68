"""kill -9 of a `bant-sync sync` process at many points of a run, then a rerun: every deal right, no task
duplicated (DESIGN.md §8). The sandbox runs in this process; the sync runs as a real child process and is
killed once the sandbox has seen its k-th CRM request. Longer kill loops live in bench/kill_loop.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxOptions
from tests.integration.conftest import CrmView
from worker.run_model import RunRequest
from worker.service import Worker
from worker.settings_loader import load_settings

UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}
LEASE_TTL_SECONDS = 30
DEALS = 700


def _sync_process(config: Path, crm: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BANT_SYNC_RUN__LEASE_TTL_SECONDS": str(LEASE_TTL_SECONDS)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.cli",
            "--config",
            str(config),
            "--log-level",
            "error",
            "sync",
            "--connection",
            crm,
            "--full",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_after(sb: Sandbox, process: subprocess.Popen[bytes], requests: int, timeout: float = 60.0) -> bool:
    """Wait (polling the request log) until the sandbox saw `requests` CRM calls, then SIGKILL the child.
    False if the child finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if len(sb.requests()) >= requests:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return True
        time.sleep(0.002)
    process.kill()
    raise AssertionError(f"the sync process made fewer than {requests} requests in {timeout} s")


def _assert_consistent(view: CrmView) -> None:
    deals = view.deals()
    tasks = view.tasks()
    keys = Counter(t["key"] for t in tasks)
    assert [k for k, n in keys.items() if n > 1] == [], "a task was duplicated"
    open_per_deal = Counter(t["deal_id"] for t in tasks if t["open"])
    unqualified = {i for i, d in deals.items() if d["open"] and d["status"] in UNQUALIFIED}
    assert dict(open_per_deal) == dict.fromkeys(unqualified, 1)


KILL_POINTS = [
    # A full run of 700 deals: Salesforce makes 9 requests (2 describes, 1 query, 4 status and 2 task
    # collections), HubSpot 18 (3 preflight reads, 4 searches, 7 status and 4 task batches). Each point
    # lands between two writes.
    *[("salesforce", k) for k in (4, 5, 7, 8)],
    *[("hubspot", k) for k in (5, 7, 9, 12, 15, 17)],
]


@pytest.mark.parametrize(
    ("crm", "kill_at"), KILL_POINTS, ids=[f"{c}-after-request-{k}" for c, k in KILL_POINTS]
)
def test_kill9_then_rerun_leaves_every_deal_right(tmp_path: Path, crm: str, kill_at: int) -> None:
    """Killed after its k-th CRM request, a rerun ends with correct statuses and exactly one open task per
    unqualified deal, and a dry run afterwards finds nothing left to write."""
    options = SandboxOptions(deals=DEALS, seed_value=11, latency_ms=15, enforce_rate_limits=False)
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        sb.reset_requests()
        killed = _kill_after(sb, _sync_process(config, crm), kill_at)
        later = datetime.now(UTC) + timedelta(seconds=LEASE_TTL_SECONDS + 1)
        worker = Worker(load_settings(str(config), environ={}), clock=lambda: later, sleep=lambda s: None)
        try:
            rerun = worker.run(RunRequest(crm, mode="full"))
            assert rerun.status == "succeeded", (killed, rerun.error)
            check = worker.run(RunRequest(crm, mode="full", dry_run=True))
            assert check.planned == [], (
                f"killed={killed}: still to write after the rerun: {check.planned[:5]}"
            )
            assert killed, f"the sync finished before its request {kill_at}: move the kill point"
        finally:
            worker.close()
        _assert_consistent(CrmView(sb, crm))
