"""`bant-sync report` over a large closed history: API calls against the budget, wall time, peak memory.

    .venv/bin/python bench/report_history.py [--closed 100000] [--crm salesforce hubspot] [--latency-ms 0]

For each CRM, a sandbox (another process, HubSpot's limits enforced: 190 calls per 10 s, 5 searches per
second) holds N synthetic closed deals with field history (`--closed-deals`). The report reads them all
with their history through the real connector, judges each at entry, and writes the HTML, PNG, CSV and JSON
files. Prints the calls against docs/design.md §5's history budget (plus one owners read), the wall time
against the floor HubSpot's limits set, the reading and the rendering separately, CPU time, and the peak
resident memory of this process and of the sandbox's.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import (
    HUBSPOT_BURST_PER_10S,
    HUBSPOT_SEARCH_PER_SECOND,
    PACED_ENV,
    sandbox_peak_mb,
    sandbox_process,
)
from worker.config.loader import load_settings
from worker.report.build import ReportRequest, build_report
from worker.report.render import write_report
from worker.service import Worker

SF_PAGE, SF_HISTORY_IDS = 2000, 200
HS_SEARCH_PAGE, HS_HISTORY_BATCH = 200, 50


def budget(crm: str, closed: int) -> int:
    """§5's history budget plus the owners read (the first report of a connection fills the cache)."""
    if crm == "salesforce":
        return math.ceil(closed / SF_PAGE) + math.ceil(closed / SF_HISTORY_IDS) + 1 + 1
    return math.ceil(closed / HS_SEARCH_PAGE) + math.ceil(closed / HS_HISTORY_BATCH) + 1


def floor_s(crm: str, closed: int, latency_s: float) -> float:
    """HubSpot: the searches at 5 per 1 s window and every call at 190 per 10 s window, whichever binds,
    the first 190 calls (5 searches) free in empty windows and each window stretched by the round trip (as
    bench/sync_bench.py reasons); Salesforce sets no short-term rate, so no floor."""
    if crm != "hubspot":
        return 0.0
    searches = math.ceil(closed / HS_SEARCH_PAGE)
    calls = searches + math.ceil(closed / HS_HISTORY_BATCH)
    by_search = max(0, searches - HUBSPOT_SEARCH_PER_SECOND) * (1 + latency_s) / HUBSPOT_SEARCH_PER_SECOND
    by_burst = max(0, calls - HUBSPOT_BURST_PER_10S) * (10 + latency_s) / HUBSPOT_BURST_PER_10S
    return max(by_search, by_burst)


def measure(crm: str, closed: int, latency_ms: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bant-sync-report-bench-") as tmp:
        config = Path(tmp) / "bench.toml"
        command = [
            sys.executable,
            "-m",
            "sandbox",
            "--seed",
            "empty",
            "--closed-deals",
            str(closed),
            "--crm",
            crm,
            "--latency-ms",
            str(latency_ms),
            "--write-config",
            str(config),
        ]
        loading = time.perf_counter()
        with sandbox_process(command) as (sandbox, _):
            loaded = time.perf_counter() - loading
            worker = Worker(load_settings(str(config), environ=PACED_ENV))
            try:
                today = worker.today()
                request = ReportRequest(crm, today - timedelta(days=365), today, "bant")
                connector = worker.connector(crm)
                wall, cpu = time.perf_counter(), time.process_time()
                connector.preflight()
                setup_calls = connector.api_calls
                report = build_report(request, connector, worker.framework(crm), worker.store, worker.clock)
                read_s = time.perf_counter() - wall
                rendering = time.perf_counter()
                write_report(report, Path(tmp) / "report")
                render_s = time.perf_counter() - rendering
                cpu_s = time.process_time() - cpu
                connector.close()
            finally:
                worker.close()
            pocs = report.sections[0].comparison
            return {
                "closed": report.closed_deals,
                "calls": report.api_calls - setup_calls,
                "budget": budget(crm, report.closed_deals),
                "read_s": read_s,
                "floor_s": floor_s(crm, report.closed_deals, latency_ms / 1000),
                "render_s": render_s,
                "cpu_s": cpu_s,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "sandbox_mb": sandbox_peak_mb(sandbox.pid),
                "sandbox_load_s": loaded,
                "qualified_rate": pocs.first.rate or 0.0,
                "unqualified_rate": pocs.second.rate or 0.0,
            }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--closed", type=int, default=100_000, help="closed deals of history (default 100000)"
    )
    parser.add_argument(
        "--crm", nargs="+", default=["salesforce", "hubspot"], choices=["salesforce", "hubspot"]
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every CRM call")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    print(f"bant-sync report over {args.closed:,} closed deals with field history")
    print(
        f"  {'crm':<11}{'closed':>9}{'calls':>7}{'budget':>8}{'x':>6}{'read s':>8}{'floor s':>8}{'x':>6}"
        f"{'render s':>9}{'cpu s':>7}{'rss MB':>8}{'sbx MB':>8}{'POC win rates':>20}"
    )
    results = {}
    for crm in args.crm:
        f = measure(crm, args.closed, args.latency_ms)
        results[crm] = f
        ratio = f"{f['read_s'] / f['floor_s']:.2f}" if f["floor_s"] else "-"
        rates = f"{f['qualified_rate']:.0%} vs {f['unqualified_rate']:.0%}"
        print(
            f"  {crm:<11}{f['closed']:>9,.0f}{f['calls']:>7,.0f}{f['budget']:>8,.0f}"
            f"{f['calls'] / f['budget']:>6.2f}{f['read_s']:>8.1f}{f['floor_s']:>8.1f}{ratio:>6}"
            f"{f['render_s']:>9.1f}{f['cpu_s']:>7.1f}{f['rss_mb']:>8.0f}{f['sandbox_mb']:>8.0f}{rates:>20}"
        )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
