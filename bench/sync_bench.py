"""Whole sync runs of the real worker against a sandbox process: API calls vs the docs/design.md §5 budget
and a naive one-call-per-record script, wall time vs the floor the CRM's rate limits set, CPU time, peak RSS.

The sandbox runs as a separate process (`python -m sandbox --deals N --crm CRM`, seeding only the CRM
measured), so CPU and memory are bant-sync's own (connector, rules, planner, state store); the sandbox's
own peak (its VmHWM, read from /proc after each run) is printed beside them. Used by
bench/salesforce_calls.py and bench/hubspot_calls.py.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import requests

from connectors.hubspot.pull import LIST_PAGE
from worker.config.loader import load_settings
from worker.logging_setup import configure_logging
from worker.service import Worker
from worker.sync.run_model import RunRequest, RunSummary

HUBSPOT_BURST_PER_10S = 190
HUBSPOT_SEARCH_PER_SECOND = 5
HUBSPOT_SEARCH_PAGE = 200
HUBSPOT_COUNTS = 3
"""A HubSpot full sweep that may list first counts the open deals, all deals and the open deals without a
status (three one-result searches)."""
IDLE_BEFORE_SWEEP_S = 10.0
"""The unchanged full sweep starts once the run before it has left HubSpot's 10-second window, as a nightly
sweep does (a run started the moment another ended first waits for that run's calls to leave it)."""
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
    full: bool = False
    portal_deals: int = 0
    """Every deal the list endpoint returns (open and closed); the sandbox's are all open."""
    idle: bool = False
    """Started once HubSpot's windows were empty: the first 190 calls (and 5 searches) go out at once."""
    list_calls: int = 0
    """`GET /crm/v3/objects/deals` calls the sandbox logged during the run."""
    sandbox_peak_mb: float = 0.0
    """The sandbox process's peak resident size so far (VmHWM; 0 where /proc is not there)."""
    owner_reads: int = 0
    """Owners reads the sandbox logged during the run: a full sweep reads them once a day (in the budget)."""

    def lists(self) -> bool:
        """Whether this run read through HubSpot's list endpoint (a full sweep where that ends sooner)."""
        return self.full and self.list_calls >= math.ceil(self.portal_deals / LIST_PAGE)

    def reads(self) -> int:
        """The read calls the budget allows: queries (Salesforce); list calls and the three counts, or
        searches, plus for a full sweep the counts and the list pages it timed before it chose to search
        (HubSpot)."""
        if self.crm == "salesforce":
            return math.ceil(self.read / 2000)
        if self.lists():
            return math.ceil(self.portal_deals / LIST_PAGE) + HUBSPOT_COUNTS
        searches = math.ceil(self.read / HUBSPOT_SEARCH_PAGE)
        return searches + (HUBSPOT_COUNTS + self.list_calls if self.full else 0)

    def budget(self) -> int:
        m, t = self.status_writes, self.task_writes
        lookups = math.ceil(self.checked / LOOKUP_CHUNK[self.crm])
        fixed = PREFLIGHT_CALLS[self.crm] + self.owner_reads
        if self.crm == "salesforce":
            return self.reads() + lookups + math.ceil((m + t) / 200) + fixed
        return self.reads() + lookups + math.ceil(m / 100) + math.ceil(t / 100) + fixed

    def naive(self) -> int:
        return self.read + self.status_writes + self.task_writes

    def floor_s(self) -> float:
        """Salesforce sets no short-term rate limit. HubSpot: searches at 5 per 1 s window, every call at 190
        per 10 s window. HubSpot counts a call when it arrives, which a client only knows to lie between
        sending and the response; so a client that must never exceed the limit holds each slot for the
        window plus the round trip, and latency L stretches each window to (window + L). A full sweep's
        floor is the lower of reading by search and reading by list (ceil(N/100) calls, burst window only),
        the run's other calls (preflight, counts, task lookups, writes) sharing the burst window either way.
        A run started in empty windows sends its first 190 calls (5 searches) at once. Each list page waits
        for the one before (its `after` is in the answer), so listing also takes its calls times L.
        """
        if self.crm == "salesforce":
            return 0.0
        searches = math.ceil(self.read / HUBSPOT_SEARCH_PAGE)
        other = max(0, self.calls - self.reads())
        free_burst, free_search = (HUBSPOT_BURST_PER_10S, HUBSPOT_SEARCH_PER_SECOND) if self.idle else (0, 0)

        def burst(calls: int) -> float:
            return max(0, calls - free_burst) * (10 + self.latency_s) / HUBSPOT_BURST_PER_10S

        by_search = max(
            max(0, searches - free_search) * (1 + self.latency_s) / HUBSPOT_SEARCH_PER_SECOND,
            burst(other + searches),
        )
        if not self.full:
            return by_search
        lists = math.ceil(self.portal_deals / LIST_PAGE)
        return min(by_search, max(burst(other + lists), lists * self.latency_s))


def _figures(
    crm: str,
    label: str,
    summary: RunSummary,
    wall: float,
    cpu: float,
    latency_ms: int,
    portal_deals: int,
    idle: bool,
    list_calls: int,
) -> Figures:
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
        summary.mode == "full",
        portal_deals,
        idle,
        list_calls,
    )


def sandbox_peak_mb(pid: int) -> float:
    """The peak resident size of process ``pid`` in MB (VmHWM in /proc), or 0 where that cannot be read:
    the sandbox is another process, so getrusage of this one does not see it."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(crm: str, deals: int, latency_ms: int) -> list[Figures]:
    """A first full run, an unchanged incremental rerun, the run after it, and an unchanged full sweep."""
    with tempfile.TemporaryDirectory(prefix="bant-sync-bench-") as tmp:
        config = Path(tmp) / "bench.toml"
        command = [
            sys.executable,
            "-m",
            "sandbox",
            "--deals",
            str(deals),
            "--crm",
            crm,
            "--latency-ms",
            str(latency_ms),
            "--write-config",
            str(config),
        ]
        with sandbox_process(command) as (sandbox, control):
            worker = Worker(load_settings(str(config), environ=PACED_ENV))
            results = []
            try:
                for label, mode, idle in (
                    ("first run (full)", "full", False),
                    ("unchanged rerun", "incremental", False),
                    ("the run after", "incremental", False),
                    ("unchanged full", "full", True),
                ):
                    if idle:
                        time.sleep(IDLE_BEFORE_SWEEP_S + latency_ms / 1000)
                    requests.delete(f"{control}/requests", timeout=60).raise_for_status()
                    wall, cpu = time.perf_counter(), time.process_time()
                    summary = worker.run(RunRequest(crm, mode=mode, trigger="cli"))
                    figures = _figures(
                        crm,
                        label,
                        summary,
                        time.perf_counter() - wall,
                        time.process_time() - cpu,
                        latency_ms,
                        deals,
                        idle,
                        _list_calls(control),
                    )
                    results.append(
                        replace(
                            figures,
                            sandbox_peak_mb=sandbox_peak_mb(sandbox.pid),
                            owner_reads=_owner_reads(control),
                        )
                    )
            finally:
                worker.close()
            return results


@contextmanager
def sandbox_process(command: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A sandbox started as `command` in its own process (so its memory is its own): the process and its
    control URL, once it has written its JSON line; terminated on exit."""
    sandbox = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert sandbox.stdout is not None
        started = sandbox.stdout.readline()
        if not started:
            raise SystemExit("the sandbox did not start")
        yield sandbox, json.loads(started)["control"]
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=60)


PACED_ENV = {
    **os.environ,
    "BANT_SYNC_CONNECTIONS__HUBSPOT__BURST_LIMIT_PER_10S": str(HUBSPOT_BURST_PER_10S),
    "BANT_SYNC_CONNECTIONS__HUBSPOT__SEARCH_PER_SECOND": str(HUBSPOT_SEARCH_PER_SECOND),
}
"""The environment a benchmark's worker runs in: paced to the sandbox's HubSpot limits."""


def _owner_reads(control: str) -> int:
    """The owners reads in the sandbox's request log (HubSpot's owners API, a SOQL query of User)."""
    logged = requests.get(f"{control}/requests", timeout=60)
    logged.raise_for_status()
    return sum(
        1
        for r in logged.json()
        if "/crm/v3/owners" in str(r["path"]) or "FROM User" in str((r.get("query") or {}).get("q", ""))
    )


def _list_calls(control: str) -> int:
    """The `GET /crm/v3/objects/deals` calls in the sandbox's request log (cleared before each run)."""
    logged = requests.get(f"{control}/requests", params={"crm": "hubspot"}, timeout=60)
    logged.raise_for_status()
    return sum(1 for r in logged.json() if r["method"] == "GET" and r["path"] == "/crm/v3/objects/deals")


def print_table(rows: list[Figures], deals: int) -> None:
    print(f"\n{rows[0].crm}, {deals:,} open deals")
    print(
        f"  {'run':<18}{'reads by':>9}{'read':>8}{'status':>8}{'tasks':>8}{'calls':>7}{'budget':>8}{'x':>6}"
        f"{'naive':>9}{'wall s':>8}{'floor s':>8}{'x':>6}{'cpu s':>7}{'rss MB':>8}{'sbx MB':>8}"
    )
    for f in rows:
        floor = f.floor_s()
        ratio = f"{f.wall_s / floor:.2f}" if floor else "-"
        print(
            f"  {f.label:<18}{'list' if f.lists() else 'search':>9}{f.read:>8,}{f.status_writes:>8,}"
            f"{f.task_writes:>8,}{f.calls:>7,}"
            f"{f.budget():>8,}{f.calls / f.budget():>6.2f}{f.naive():>9,}{f.wall_s:>8.1f}{floor:>8.1f}"
            f"{ratio:>6}"
            f"{f.cpu_s:>7.1f}{f.peak_rss_mb:>8.0f}{f.sandbox_peak_mb:>8.0f}"
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
        "HubSpot ceil(N/200) searches (a full sweep: 3 counts, and ceil(N/100) list calls where listing ends "
        "sooner) + ceil(K/100) task lookups + ceil(M/100) + ceil(T/100) + 4 preflight reads; both plus the "
        "owners read a full sweep makes once a day. "
        "floor: HubSpot searches at 5 per (1 s + latency) or calls at 190 per (10 s + latency); a full "
        "sweep's is the lower of reading by search and reading by list."
    )
