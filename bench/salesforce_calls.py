"""Salesforce connector: API calls per run against the DESIGN.md §5 budget and a naive script.

Starts the sandbox as a separate process (`python -m sandbox --deals N`), so the peak RSS and CPU time
reported here are the connector's (plus rules and planner), not the sandbox's. For each size: a first full
run, then two unchanged reruns from the saved cursor. Calls are counted from the sandbox's request log.

    .venv/bin/python bench/salesforce_calls.py            # 10,000 and 100,000
    .venv/bin/python bench/salesforce_calls.py --deals 10000
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from connectors.model import Cursor, OutcomeKind, WriteTarget
from connectors.registry import ConnectorContext, LedgerEntry
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from rules import evaluate, framework_from_mapping
from worker.planner import PlanContext, plan_page

ROOT = Path(__file__).resolve().parents[1]


class Ledger:
    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    def intend(self, sync_key: str, deal_id: str, missing: tuple[str, ...]) -> None:
        self.entries[sync_key] = LedgerEntry(sync_key, deal_id, None, "intended", missing)

    def confirm(self, sync_key: str, task_id: str, state: str, missing: tuple[str, ...]) -> None:
        deal = self.entries[sync_key].deal_id
        self.entries[sync_key] = LedgerEntry(sync_key, deal, task_id, state, missing)

    def lookup(self, sync_key: str) -> LedgerEntry | None:
        return self.entries.get(sync_key)

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries.values() if e.task_id is None]

    def open_by_deal(self, ids: set[str]) -> dict[str, LedgerEntry]:
        return {e.deal_id: e for e in self.entries.values() if e.state == "open" and e.deal_id in ids}


@dataclass
class RunFigures:
    read: int
    status_writes: int
    task_writes: int
    query_calls: int
    write_calls: int
    other_calls: int
    cpu_s: float
    wall_s: float

    @property
    def calls(self) -> int:
        return self.query_calls + self.write_calls + self.other_calls

    def budget(self) -> int:
        m_t = self.status_writes + self.task_writes
        return math.ceil(self.read / 2000) + math.ceil(m_t / 200) + 2

    def naive(self) -> int:
        return self.read + self.status_writes + self.task_writes


def start_sandbox(deals: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--deals", str(deals), "--no-rate-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("the sandbox did not start")
    return proc, json.loads(line)


def split_log(info: dict[str, Any], counts: list[int]) -> list[tuple[int, int, int]]:
    """(query, write, other) calls of each run, from the sandbox's request log in order. Fetched once, at
    the end: the log holds every request body and would dwarf the connector's own memory."""
    log = requests.get(f"{info['control']}/requests", timeout=120).json()
    entries = [r for r in log if r["crm"] == "salesforce" and "/oauth2/" not in r["path"]]
    assert len(entries) == sum(counts), (len(entries), counts)
    split, start = [], 0
    for count in counts:
        chunk = entries[start : start + count]
        start += count
        queries = sum(1 for r in chunk if "/query" in r["path"])
        writes = sum(1 for r in chunk if r["method"] in ("POST", "PATCH"))
        split.append((queries, writes, count - queries - writes))
    return split


def run(
    info: dict[str, Any], ledger: Ledger, cursor: Cursor | None, full: bool
) -> tuple[RunFigures, Cursor | None, int]:
    framework = framework_from_mapping(
        tomllib.loads((ROOT / "config/frameworks/bant.toml").read_text()), "bant.toml"
    )
    sf = info["salesforce"]
    settings = SalesforceSettings(
        instance_url=sf["instance_url"], login_url=sf["login_url"], auth="token", ca_bundle=info["ca_bundle"]
    )
    context = ConnectorContext(
        "bench", {"access_token": sf["access_token"]}, ledger, lambda: datetime.now(UTC), time.sleep
    )
    connector = SalesforceConnector(settings, context)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    read = statuses = tasks = 0
    connector.preflight()
    for page in connector.fetch_changed(cursor, full=full):
        now = datetime.now(UTC)
        ctx = PlanContext("bench", now.date(), now, 3)
        assessments = [evaluate(deal, framework, ctx.today) for deal in page.deals]
        plan = plan_page(page.deals, assessments, ledger.open_by_deal({d.id for d in page.deals}), ctx)
        outcomes = connector.apply(plan)
        read += len(page.deals)
        statuses += sum(
            1 for o in outcomes if o.target is WriteTarget.STATUS and o.kind is OutcomeKind.WRITTEN
        )
        tasks += sum(1 for o in outcomes if o.target is WriteTarget.TASK and o.kind is OutcomeKind.WRITTEN)
        cursor = page.cursor
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    connector.close()
    return RunFigures(read, statuses, tasks, 0, 0, 0, cpu, wall), cursor, connector.api_calls


def bench(deals: int) -> None:
    proc, info = start_sandbox(deals)
    try:
        ledger = Ledger()
        cursor = None
        runs: list[tuple[str, RunFigures]] = []
        counts: list[int] = []
        rss: list[float] = []
        for name, full in (("first (full)", True), ("rerun 1", False), ("rerun 2", False)):
            figures, cursor, calls = run(info, ledger, cursor, full)
            runs.append((name, figures))
            counts.append(calls)
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        for (_, figures), (q, w, o) in zip(runs, split_log(info, counts), strict=True):
            figures.query_calls, figures.write_calls, figures.other_calls = q, w, o
        print(f"\n## {deals:,} opportunities (sandbox, no latency)")
        print(
            "| run | deals read | status writes | task writes | API calls (query+write+other) | budget §5 "
            "| calls/budget | naive | CPU s | wall s | peak RSS MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for (name, figures), peak in zip(runs, rss, strict=True):
            ratio = figures.calls / figures.budget()
            print(
                f"| {name} | {figures.read:,} | {figures.status_writes:,} | {figures.task_writes:,} | "
                f"{figures.calls:,} ({figures.query_calls}+{figures.write_calls}+{figures.other_calls}) | "
                f"{figures.budget():,} | {ratio:.2f}x | {figures.naive():,} | {figures.cpu_s:.2f} | "
                f"{figures.wall_s:.2f} | {peak:.0f} |"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, nargs="+", default=[10_000, 100_000])
    for deals in parser.parse_args().deals:
        bench(deals)
    print("\npeak RSS is the process maximum so far (ru_maxrss): run one size per process to read it alone")


if __name__ == "__main__":
    main()
