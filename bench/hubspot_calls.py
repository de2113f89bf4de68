"""HubSpot connector benchmark: API calls vs the DESIGN.md §5 budget and a naive script, wall time vs the
floor HubSpot's rate limits set, peak memory.

    .venv/bin/python bench/hubspot_calls.py                 # 10,000 and 100,000 deals
    .venv/bin/python bench/hubspot_calls.py --deals 10000   # one size

The sandbox runs as a separate process (`python -m sandbox`, HubSpot limits enforced: 190 calls / 10 s,
5 searches / s) so the peak RSS printed is the connector's own. Each size does three runs the way the
worker would, assessing with `rules.evaluate` and diffing against what each deal shows:
  1. first run (full sweep: every deal gets its status, unqualified ones a task),
  2. rerun right after (sees its own writes inside the 60-minute overlap; must write nothing),
  3. rerun two hours later (sandbox clock advanced): nothing changed, so at most 2 reads.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime

import requests

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.model import Cursor, StatusWrite, TaskAction, TaskWrite, WritePlan
from connectors.registry import ConnectorContext, LedgerEntry
from connectors.tasks import due_date, sync_key, task_description, task_subject
from rules import Deal, Framework, evaluate
from worker.frameworks import load_framework

SANDBOX_BURST = 190
SANDBOX_SEARCH = 5


class MemoryLedger:
    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}

    def intend(self, sync_key: str, deal_id: str, missing: tuple[str, ...]) -> None:
        if sync_key not in self.entries or self.entries[sync_key].task_id is None:
            self.entries[sync_key] = LedgerEntry(sync_key, deal_id, None, "intended", missing)

    def confirm(self, sync_key: str, task_id: str, state: str, missing: tuple[str, ...]) -> None:
        deal_id = self.entries[sync_key].deal_id if sync_key in self.entries else ""
        self.entries[sync_key] = LedgerEntry(sync_key, deal_id, task_id, state, missing)

    def lookup(self, sync_key: str) -> LedgerEntry | None:
        return self.entries.get(sync_key)

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries.values() if e.task_id is None]


def plan_page(
    deals: tuple[Deal, ...], framework: Framework, today: date, now: datetime, ledger: MemoryLedger
) -> WritePlan:
    """What the worker's diff would send for one page: only real changes."""
    statuses: list[StatusWrite] = []
    tasks: list[TaskWrite] = []
    for deal in deals:
        a = evaluate(deal, framework, today)
        shown = deal.flags
        if (a.status.value, a.missing, a.score, a.flagged_since) != (
            shown.status,
            shown.missing or (),
            shown.score,
            deal.flagged_since,
        ):
            statuses.append(StatusWrite(deal.id, a.status, a.missing, a.score, now, a.flagged_since))
        key = sync_key("bench", deal.id)
        entry = ledger.lookup(key)
        is_open = entry is not None and entry.state == "open"
        if a.status.is_unqualified and (not is_open or (entry and entry.missing != a.missing)):
            action = TaskAction.UPDATE if is_open else TaskAction.CREATE
            tasks.append(
                TaskWrite(
                    action,
                    key,
                    deal.id,
                    deal.owner_id,
                    task_subject(deal.name, a.missing, a.status.value),
                    task_description(deal.name, a.missing, a.reasons, a.status.value),
                    due_date(today, 3),
                )
            )
        elif not a.status.is_unqualified and is_open:
            tasks.append(TaskWrite(TaskAction.COMPLETE, key, deal.id, deal.owner_id, "", "", today))
    return WritePlan(tuple(statuses), tuple(tasks))


@dataclass
class RunFigures:
    deals: int = 0
    status_writes: int = 0
    task_writes: int = 0
    calls: int = 0
    searches: int = 0
    seconds: float = 0.0
    cursor: Cursor | None = None

    @property
    def budget(self) -> int:
        n, m, t = self.deals, self.status_writes, self.task_writes
        return math.ceil(n / 200) + math.ceil(m / 100) + math.ceil(t / 100)

    @property
    def naive(self) -> int:
        return self.deals + self.status_writes + self.task_writes

    @property
    def floor(self) -> float:
        """Seconds the limits allow at best: searches at 5/s, every call at 190 per 10 s."""
        return max(self.searches / SANDBOX_SEARCH, max(0, self.calls - SANDBOX_BURST) / (SANDBOX_BURST / 10))


def one_run(
    connector: HubSpotConnector,
    framework: Framework,
    ledger: MemoryLedger,
    clock: SandboxClock,
    cursor: Cursor | None,
) -> RunFigures:
    figures = RunFigures()
    calls_before = connector.api_calls
    searches_before = connector.client.calls_by_method["deals_search.do_search"]
    started = time.perf_counter()
    connector.preflight()
    for page in connector.fetch_changed(cursor):
        now = clock()
        plan = plan_page(page.deals, framework, now.date(), now, ledger)
        figures.deals += len(page.deals)
        figures.status_writes += len(plan.status_writes)
        figures.task_writes += len(plan.task_writes)
        if not plan.is_empty:
            connector.apply(plan)
        if page.cursor is not None:
            figures.cursor = (
                page.cursor if cursor is None else max(page.cursor, figures.cursor or page.cursor)
            )
    figures.seconds = time.perf_counter() - started
    figures.calls = connector.api_calls - calls_before
    figures.searches = connector.client.calls_by_method["deals_search.do_search"] - searches_before
    if figures.cursor is None:
        figures.cursor = cursor
    return figures


class SandboxClock:
    """The sandbox's clock, read once through its control API, then followed with the monotonic clock."""

    def __init__(self, control: str) -> None:
        self.control = control
        self.resync()

    def resync(self) -> None:
        snapshot_now = requests.post(f"{self.control}/clock", json={"advance": 0}, timeout=10).json()
        self._base = datetime.fromisoformat(str(snapshot_now.get("now")).replace("Z", "+00:00"))
        self._mono = time.monotonic()

    def advance(self, seconds: float) -> None:
        requests.post(f"{self.control}/clock", json={"advance": seconds}, timeout=10)
        self.resync()

    def __call__(self) -> datetime:
        from datetime import timedelta

        return self._base + timedelta(seconds=time.monotonic() - self._mono)


def bench(n: int, latency_ms: int) -> None:
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "--deals",
        str(n),
        "--seed-value",
        "7",
        "--latency-ms",
        str(latency_ms),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        clock = SandboxClock(info["control"])
        ledger = MemoryLedger()
        settings = HubSpotSettings(
            host=info["hubspot"]["host"], burst_limit_per_10s=SANDBOX_BURST, search_per_second=SANDBOX_SEARCH
        )
        context = ConnectorContext(
            "bench", {"access_token": info["hubspot"]["access_token"]}, ledger, clock, time.sleep
        )
        connector = HubSpotConnector(settings, context)
        setup_report = connector.setup()
        framework = load_framework("bant")
        first = one_run(connector, framework, ledger, clock, None)
        rerun = one_run(connector, framework, ledger, clock, first.cursor)
        clock.advance(2 * 3600)
        later = one_run(connector, framework, ledger, clock, rerun.cursor)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before fetching the request log
        throttled = sum(
            1 for r in requests.get(f"{info['control']}/requests", timeout=60).json() if r["status"] == 429
        )
        print(
            f"\n== {n:,} deals (sandbox latency {latency_ms} ms; setup created {len(setup_report.created)})"
        )
        header = (
            f"{'run':<22}{'deals':>8}{'M':>8}{'T':>8}{'calls':>8}{'budget':>8}{'x':>6}{'naive':>9}"
            f"{'wall s':>9}{'floor s':>9}{'x':>6}"
        )
        print(header)
        for label, f in (("first run", first), ("rerun (in overlap)", rerun), ("rerun +2h", later)):
            budget = f.budget + 3
            print(
                f"{label:<22}{f.deals:>8}{f.status_writes:>8}{f.task_writes:>8}{f.calls:>8}{budget:>8}"
                f"{f.calls / budget:>6.2f}{f.naive:>9}{f.seconds:>9.1f}{f.floor:>9.1f}"
                f"{(f.seconds / f.floor if f.floor else 0):>6.2f}"
            )
        print(
            f"429 responses: {throttled}; retries: {connector.client.policy.retries_used}; "
            f"peak RSS of the connector process: {rss_mb:.0f} MB"
        )
        connector.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    for n in args.deals:
        bench(n, args.latency_ms)


if __name__ == "__main__":
    main()
