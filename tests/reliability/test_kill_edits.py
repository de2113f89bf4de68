"""kill -9 with reps at work between the kills (docs/design.md §6, §8): rounds of random rep edits, each
followed by a `bant-sync sync` child process killed at a random moment, then one full sweep converges.
Longer loops: `bench/kill_loop.py --edits N`."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxOptions
from tests.reliability.edit_loop import run_edit_loop
from worker import exit_codes

DEALS = 120
ROUNDS = 3
EDITS = 40
SEED = 5


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_kills_between_rep_edits_converge_at_the_next_full_sweep(tmp_path: Path, crm: str) -> None:
    """Three rounds of rep edits, each followed by a sync killed at a random moment: one full sweep leaves
    every deal right (tasks, no duplicate, audit log equal to the CRM) and nothing to write."""
    options = SandboxOptions(deals=DEALS, seed_value=11, latency_ms=15, enforce_rate_limits=False)
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        report = run_edit_loop(sb, config, crm, rounds=ROUNDS, edits=EDITS, rng=random.Random(SEED))
    assert report.killed >= 1, report.line()
    assert report.finished.get(exit_codes.LEASE_HELD, 0) == 0, "a dead holder's lease was not taken over"
    assert sum(report.edits.values()) >= ROUNDS * EDITS // 2, report.edits
    assert report.problems == [], report.line()
