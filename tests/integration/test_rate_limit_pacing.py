"""A HubSpot run that starts right after another paces against the calls the last one just sent: the rate
windows live in the worker's per-connection `pacing`, not in each run's connector. Each run used to start with
empty windows, burst its first searches into the ones the previous run had filled, and meet HubSpot's
SECONDLY 429 (seen in `make demo`'s rerun and nightly sweep)."""

from __future__ import annotations

from pathlib import Path

from connectors.hubspot.connector import HubSpotConnector
from sandbox import SandboxOptions
from tests.integration.conftest import sandbox_env


def test_each_run_of_a_connection_shares_its_rate_windows(tmp_path: Path) -> None:
    options = SandboxOptions(seed="track-selling", seed_value=7, enforce_rate_limits=False)
    with sandbox_env("hubspot", tmp_path, options) as env:
        first = env.worker.connector("hubspot")
        second = env.worker.connector("hubspot")
        try:
            assert isinstance(first, HubSpotConnector) and isinstance(second, HubSpotConnector)
            assert first.limiter is second.limiter
            summary = env.run("full")
            assert summary.status == "succeeded", summary.error
            assert first.limiter.burst.in_window == summary.api_calls, (
                "the next run's connector paces against every call of the run that just ended"
            )
        finally:
            first.close()
            second.close()
