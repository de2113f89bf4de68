"""kill -9 of a `bant-sync sync` process at many points of a run, then a rerun: every deal right, no task
duplicated (docs/design.md §8). The sandbox runs in this process; the sync runs as a real child process and is
killed once the sandbox has seen its k-th CRM request. Longer kill loops live in bench/kill_loop.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxOptions
from tests.integration.conftest import CrmView
from tests.reliability.harness import assert_consistent, kill_and_rerun

DEALS = 700

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
        result = kill_and_rerun(sb, config, crm, kill_at)
        assert result.killed, f"the sync finished before its request {kill_at}: move the kill point"
        assert result.rerun.status == "succeeded", result.rerun.error
        assert result.leftover == [], f"still to write after the rerun: {result.leftover[:5]}"
        assert_consistent(CrmView(sb, crm))
