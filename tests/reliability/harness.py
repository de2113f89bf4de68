"""Kill harness: run `bant-sync sync` as a child process, SIGKILL it after its k-th CRM request, and check
what the CRM shows afterwards. Used by tests/reliability and bench/kill_loop.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import Sandbox
from tests.integration.conftest import CrmView
from tests.timing import FakeTime
from worker.config.loader import load_settings
from worker.service import Worker
from worker.sync.run_model import RunRequest, RunSummary

UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}
LEASE_TTL_SECONDS = 30


AS_HOST = (
    "import runpy, socket; socket.gethostname = lambda: {host!r}; "
    "runpy.run_module('worker.cli', run_name='__main__', alter_sys=True)"
)
"""A child that believes it runs on another host (its lease names that host, so nobody probes its PID)."""


def sync_process(
    config: Path,
    crm: str,
    full: bool = True,
    *,
    lease_ttl: int | None = LEASE_TTL_SECONDS,
    host: str | None = None,
) -> subprocess.Popen[bytes]:
    """`bant-sync sync` of one connection as a child process (a full sweep, or an incremental run), with
    `lease_ttl` (None: the shipped default) and, when `host` is given, pretending to run on that host."""
    env = dict(os.environ)
    env.pop("BANT_SYNC_RUN__LEASE_TTL_SECONDS", None)
    if lease_ttl is not None:
        env["BANT_SYNC_RUN__LEASE_TTL_SECONDS"] = str(lease_ttl)
    entry = ["-m", "worker.cli"] if host is None else ["-c", AS_HOST.format(host=host)]
    command = [sys.executable, *entry, "--config", str(config), "--log-level", "error", "sync"]
    return subprocess.Popen(
        [*command, "--connection", crm, *(["--full"] if full else [])],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_after(sb: Sandbox, process: subprocess.Popen[bytes], requests: int, timeout: float = 60.0) -> bool:
    """SIGKILL the child once the sandbox saw `requests` CRM calls; False if the child finished first."""
    return kill_when(sb, process, lambda log: len(log) >= requests, timeout)


def kill_when(
    sb: Sandbox,
    process: subprocess.Popen[bytes],
    reached: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 60.0,
) -> bool:
    """SIGKILL the child as soon as the sandbox's request log satisfies `reached` (polled every 2 ms).
    False if the child finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if reached(sb.requests()):
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return True
        time.sleep(0.002)
    process.kill()
    raise AssertionError(f"the sync process neither finished nor reached its kill point in {timeout} s")


def assert_consistent(view: CrmView) -> None:
    deals = view.deals()
    tasks = view.tasks()
    keys = Counter(t["key"] for t in tasks)
    assert [k for k, n in keys.items() if n > 1] == [], "a task was duplicated"
    open_per_deal = Counter(t["deal_id"] for t in tasks if t["open"])
    unqualified = {i for i, d in deals.items() if d["open"] and d["status"] in UNQUALIFIED}
    assert dict(open_per_deal) == dict.fromkeys(unqualified, 1)


@dataclass(frozen=True)
class KillResult:
    killed: bool
    rerun: RunSummary
    leftover: list[dict[str, Any]]
    """What a dry run after the rerun still wants to write: empty when every deal is right."""


def kill_and_rerun(sb: Sandbox, config: Path, crm: str, kill_at: int) -> KillResult:
    """SIGKILL a full sync after its `kill_at`-th request, rerun in this process at once (it takes the dead
    run's lease over: same host, PID gone), then dry-run to see what is still wrong."""
    sb.reset_requests()
    killed = kill_after(sb, sync_process(config, crm), kill_at)
    now = FakeTime()
    worker = Worker(load_settings(str(config), environ={}), clock=now.now, sleep=now.sleep)
    try:
        rerun = worker.run(RunRequest(crm, mode="full"))
        check = worker.run(RunRequest(crm, mode="full", dry_run=True))
    finally:
        worker.close()
    return KillResult(killed, rerun, check.planned)
