"""Concurrent triggers (CLI, scheduler, ops API) → one run; the others are told which run holds the lease."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from sandbox import Sandbox, SandboxOptions
from tests.timing import FakeTime
from worker import exit_codes
from worker.config.loader import load_settings
from worker.serve.ops_api import create_app
from worker.serve.scheduler import run_scheduled
from worker.service import Worker
from worker.state import LeaseHeldError
from worker.sync.run_model import RunRequest

TOKEN = "integration-ops-token-0123456789abcdef"


def test_cli_scheduler_and_http_triggers_at_once_make_one_run(tmp_path: Path) -> None:
    """Three triggers released together on one connection: exactly one run happens; the CLI trigger gets
    LeaseHeldError naming it, the scheduler skips, the HTTP trigger gets 409 naming it."""
    options = SandboxOptions(deals=400, latency_ms=40, enforce_rate_limits=False)
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        settings = load_settings(str(config), environ={})
        workers = [Worker(settings, clock=FakeTime().now, sleep=FakeTime().sleep) for _ in range(3)]
        client = TestClient(create_app(workers[2], TOKEN, 16_384))
        start = threading.Barrier(3)
        results: dict[str, Any] = {}

        def cli() -> None:
            start.wait()
            try:
                results["cli"] = workers[0].run(RunRequest("hubspot", mode="full"))
            except LeaseHeldError as exc:
                results["cli"] = exc

        def scheduler() -> None:
            start.wait()
            results["schedule"] = run_scheduled(workers[1], "hubspot", "incremental")

        def http() -> None:
            start.wait()
            results["http"] = client.post(
                "/resync", json={"connection": "hubspot"}, headers={"Authorization": f"Bearer {TOKEN}"}
            )

        threads = [threading.Thread(target=f) for f in (cli, scheduler, http)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        client.app.state.launcher.join(timeout=60)  # type: ignore[attr-defined]
        runs = workers[0].store.list_runs("hubspot")
        for worker in workers:
            worker.close()
    assert len(runs) == 1, [r.run_id for r in runs]
    winner = runs[0].run_id
    ran = 0
    if isinstance(results["cli"], LeaseHeldError):
        assert results["cli"].holder_run_id == winner
    else:
        ran += 1
    ran += results["schedule"] is not None
    if results["http"].status_code == 409:
        assert results["http"].json()["holder_run_id"] == winner
    else:
        assert results["http"].status_code == 202
        ran += 1
    assert ran == 1


def test_cli_exits_with_the_lease_code_and_names_the_holder(tmp_path: Path) -> None:
    """`bant-sync sync` while another run holds the lease: exit code 5 and the holder's run id on stderr."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        holder = Worker(load_settings(str(config), environ={}))
        lease = holder.reserve("salesforce")
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "worker.cli.app",
                    "--config",
                    str(config),
                    "sync",
                    "--connection",
                    "salesforce",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            holder.store.release_lease(lease)
            holder.close()
    assert done.returncode == exit_codes.LEASE_HELD
    assert lease.run_id in done.stderr
    assert "Traceback" not in done.stderr
