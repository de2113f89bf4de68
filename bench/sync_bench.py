"""Whole sync runs of the real worker against a sandbox process: API calls vs the docs/design.md §5 budget
and a naive one-call-per-record script, wall time vs the floor the CRM's rate limits set, CPU time, peak RSS.

The sandbox runs as a separate process (`python -m sandbox --deals N`), so CPU and memory are bant-sync's
own (connector, rules, planner, state store). Used by bench/salesforce_calls.py and bench/hubspot_calls.py.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from worker.config.loader import load_settings
from worker.logging_setup import configure_logging
from worker.service import Worker
from worker.sync.run_model import RunRequest, RunSummary

HUBSPOT_BURST_PER_10S = 190
HUBSPOT_SEARCH_PER_SECOND = 5
PREFLIGHT_CALLS = {"salesforce": 3, "hubspot": 4}
"""Salesforce: two describes and the org id; HubSpot: properties of deals and tasks, association labels and
the account details (portal id)."""
LOOKUP_CHUNK = {"salesforce": 200, "hubspot": 100}
"""Task keys per lookup call (Salesforce: SOQL in a URL capped at 16,384 bytes; HubSpot: batch read)."""


@dataclass(frozen=True)
class Figures:
    crm: str
    label: str
    read: int
    status_writes: int
    task_writes: int
    checked: int
    calls: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    latency_s: float = 0.0

    def budget(self) -> int:
        n, m, t = self.read, self.status_writes, self.task_writes
        lookups = math.ceil(self.checked / LOOKUP_CHUNK[self.crm])
        if self.crm == "salesforce":
            return math.ceil(n / 2000) + lookups + math.ceil((m + t) / 200) + PREFLIGHT_CALLS["salesforce"]
        return (
            math.ceil(n / 200)
            + lookups
            + math.ceil(m / 100)
            + math.ceil(t / 100)
            + PREFLIGHT_CALLS["hubspot"]
        )

    def naive(self) -> int:
        return self.read + self.status_writes + self.task_writes

    def floor_s(self) -> float:
        """Salesforce sets no short-term rate limit. HubSpot: searches at 5 per 1 s window, every call at 190
        per 10 s window. HubSpot counts a call when it arrives, which a client only knows to lie between
        sending and the response; so a client that must never exceed the limit holds each slot for the
        window plus the round trip, and latency L stretches each window to (window + L)."""
        if self.crm == "salesforce":
            return 0.0
        searches = math.ceil(self.read / 200)
        return max(
            searches * (1 + self.latency_s) / HUBSPOT_SEARCH_PER_SECOND,
            self.calls * (10 + self.latency_s) / HUBSPOT_BURST_PER_10S,
        )


def _figures(crm: str, label: str, summary: RunSummary, wall: float, cpu: float, latency_ms: int) -> Figures:
    if summary.status != "succeeded":
        raise SystemExit(f"{crm} {label} run {summary.status}: {summary.error}")
    tasks = sum(summary.tasks.get(k, 0) for k in ("created", "updated", "reopened", "completed"))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Figures(
        crm,
        label,
        summary.deals.get("read", 0),
        summary.deals.get("written", 0),
        tasks,
        summary.tasks.get("checked", 0),
        summary.api_calls,
        wall,
        cpu,
        rss_mb,
        latency_ms / 1000,
    )


def measure(crm: str, deals: int, latency_ms: int) -> list[Figures]:
    """A first full run, an unchanged incremental rerun, and the run after it."""
    with tempfile.TemporaryDirectory(prefix="bant-sync-bench-") as tmp:
        config = Path(tmp) / "bench.toml"
        command = [
            sys.executable,
            "-m",
            "sandbox",
            "--deals",
            str(deals),
            "--latency-ms",
            str(latency_ms),
            "--write-config",
            str(config),
        ]
        sandbox = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert sandbox.stdout is not None
            if not sandbox.stdout.readline():
                raise SystemExit("the sandbox did not start")
            env = {
                **os.environ,
                "BANT_SYNC_CONNECTIONS__HUBSPOT__BURST_LIMIT_PER_10S": str(HUBSPOT_BURST_PER_10S),
                "BANT_SYNC_CONNECTIONS__HUBSPOT__SEARCH_PER_SECOND": str(HUBSPOT_SEARCH_PER_SECOND),
            }
            worker = Worker(load_settings(str(config), environ=env))
            results = []
            try:
                for label, mode in (
                    ("first run (full)", "full"),
                    ("unchanged rerun", "incremental"),
                    ("the run after", "incremental"),
                ):
                    wall, cpu = time.perf_counter(), time.process_time()
                    summary = worker.run(RunRequest(crm, mode=mode, trigger="cli"))
                    results.append(
                        _figures(
                            crm,
                            label,
                            summary,
                            time.perf_counter() - wall,
                            time.process_time() - cpu,
                            latency_ms,
                        )
                    )
            finally:
                worker.close()
            return results
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)


def print_table(rows: list[Figures], deals: int) -> None:
    print(f"\n{rows[0].crm}, {deals:,} open deals")
    print(
        f"  {'run':<18}{'read':>8}{'status':>8}{'tasks':>8}{'calls':>7}{'budget':>8}{'x':>6}"
        f"{'naive':>9}{'wall s':>8}{'floor s':>8}{'x':>6}{'cpu s':>7}{'rss MB':>8}"
    )
    for f in rows:
        floor = f.floor_s()
        ratio = f"{f.wall_s / floor:.2f}" if floor else "-"
        print(
            f"  {f.label:<18}{f.read:>8,}{f.status_writes:>8,}{f.task_writes:>8,}{f.calls:>7,}"
            f"{f.budget():>8,}{f.calls / f.budget():>6.2f}{f.naive():>9,}{f.wall_s:>8.1f}{floor:>8.1f}"
            f"{ratio:>6}"
            f"{f.cpu_s:>7.1f}{f.peak_rss_mb:>8.0f}"
        )


def main(crm: str, doc: str) -> None:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--latency-ms", type=int, default=0, help="added by the sandbox to every CRM call")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON lines")
    args = parser.parse_args()
    configure_logging("warning")
    for deals in args.deals:
        rows = measure(crm, deals, args.latency_ms)
        print_table(rows, deals)
        if args.json:
            for f in rows:
                print(
                    json.dumps(
                        {**f.__dict__, "budget": f.budget(), "naive": f.naive(), "floor_s": f.floor_s()}
                    )
                )
    print(
        "\nbudget: Salesforce ceil(N/2000) + ceil(K/200) task lookups + ceil((M+T)/200) + 3 preflight reads; "
        "HubSpot ceil(N/200) + ceil(K/100) task lookups + ceil(M/100) + ceil(T/100) + 4 preflight reads. "
        "floor: HubSpot searches at 5 per (1 s + latency) or calls at 190 per (10 s + latency)."
    )
