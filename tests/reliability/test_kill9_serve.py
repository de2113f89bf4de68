"""`serve` killed -9 in the middle of its catch-up run, then started again: the new `serve` takes the dead
run's lease over and runs its catch-up at once (it used to skip it for the lease's 15 minutes). Real
processes, real SIGKILL; asserted on the run records and the exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sandbox import Sandbox, SandboxOptions
from tests.reliability.harness import kill_after
from worker import exit_codes
from worker.config.loader import load_settings
from worker.state import StateStore

CRM = "hubspot"
DEALS = 300
LONG_TTL = 900
"""Both services' lease TTL: far longer than the test, so only a takeover lets the catch-up run in time."""


def _serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANT_SYNC_")}
    env["BANT_SYNC_CONNECTIONS__SALESFORCE__ENABLED"] = "false"
    env["BANT_SYNC_RUN__LEASE_TTL_SECONDS"] = str(LONG_TTL)
    command = [sys.executable, "-m", "worker.cli", "--config", str(config), "--log-format", "json"]
    with log.open("wb") as out:
        return subprocess.Popen([*command, "serve", "--no-api"], env=env, stdout=out, stderr=out)


def _finished_runs(log: Path) -> list[dict[str, object]]:
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == "scheduled run finished"]


def test_a_restarted_serve_catches_up_at_once_after_a_sigkill(tmp_path: Path) -> None:
    """The first `serve` is killed while its catch-up run holds the lease; the second one's catch-up takes
    that lease over and succeeds, the dead run is abandoned, and SIGTERM stops it cleanly."""
    options = SandboxOptions(deals=DEALS, seed_value=11, latency_ms=15, enforce_rate_limits=False)
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        first = _serve(config, tmp_path / "first.log")
        assert kill_after(sb, first, 6), "the first serve's catch-up finished before its kill point"
        second = _serve(config, tmp_path / "second.log")
        try:
            deadline = time.monotonic() + 60
            while not _finished_runs(tmp_path / "second.log") and time.monotonic() < deadline:
                assert second.poll() is None, (tmp_path / "second.log").read_text()
                time.sleep(0.01)
            done = _finished_runs(tmp_path / "second.log")
            assert done, (
                "the restarted serve ran no catch-up within 60 s: the dead run's lease was not taken over"
            )
            (finished,) = done
            assert (finished["connection"], finished["status"]) == (CRM, "succeeded"), finished
        finally:
            second.send_signal(signal.SIGTERM)
            code = second.wait(timeout=60)
        assert code == exit_codes.OK
    store = StateStore.open(load_settings(str(config), environ={}).state.database_url())
    try:
        runs = sorted(store.list_runs(CRM), key=lambda r: r.started_at)
    finally:
        store.close()
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "abandoned"), ("schedule", "succeeded")]
    assert runs[1].run_id == finished["run_id"]
