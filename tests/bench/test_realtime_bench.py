"""bench/realtime.py end to end at a tiny scale: its own sandbox process and `bant-sync serve`, a few single
edits and a small burst, short event windows. Checks the output's shape and the burst's call budget, never
its timings (they are what the benchmark reports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "realtime.py"
BURST = 100


def _run(crm: str) -> dict[str, object]:
    command = [sys.executable, str(BENCH), "--crm", crm, "--json", "--deals", "200", "--edits", "3"]
    command += ["--burst", str(BURST), "--debounce", "0.2", "--max-delay", "1", "--settle", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=100, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, object] = json.loads(done.stdout)
    return figures


@pytest.mark.slow
@pytest.mark.timeout(110)
@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_the_realtime_bench_reports_latency_and_a_burst_within_its_budget(crm: str) -> None:
    figures = _run(crm)
    assert list(figures) == [crm]
    result = figures[crm]
    assert isinstance(result, dict)
    assert set(result) == {"p50_s", "p95_s", "p99_s", "burst"}
    assert 0 < result["p50_s"] <= result["p95_s"] <= result["p99_s"]
    burst = result["burst"]
    assert set(burst) == {"edits", "calls", "budget", "rate_limited", "drain_s"}
    assert burst["edits"] == BURST
    assert 0 < burst["calls"] <= burst["budget"]
    assert burst["rate_limited"] == 0
    assert burst["drain_s"] >= 0
