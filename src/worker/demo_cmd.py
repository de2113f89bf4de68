"""`bant-sync demo`: the sandbox CRM with the track-selling story, one full sync per CRM, then a rerun.

No credentials and no network: the sandbox runs in this process on 127.0.0.1, and the real client
libraries talk to it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from sandbox import Sandbox, SandboxOptions
from worker import exit_codes
from worker.logging_setup import configure_logging
from worker.run_model import RunRequest, RunSummary
from worker.service import Worker
from worker.settings import Settings
from worker.settings_loader import load_settings
from worker.status_cmd import run_setup

STATUS_ORDER = ("poc_unqualified", "qualify_out", "needs_qualification", "qualified", "not_evaluated")


def _flagged_pocs(sb: Sandbox, crm: str) -> list[tuple[str, str]]:
    """(deal name, what is missing) for the POCs the sync flagged, read back from the CRM itself."""
    found: list[tuple[str, str]] = []
    if crm == "salesforce":
        for record in sb.salesforce.records("Opportunity"):
            if record.get("BANT_Status__c") == "poc_unqualified":
                found.append((str(record.get("Name")), str(record.get("BANT_Missing__c") or "")))
    else:
        for deal in sb.hubspot.deals():
            props: Any = deal["properties"]
            if props.get("bant_status") == "poc_unqualified":
                found.append((str(props.get("dealname")), str(props.get("bant_missing") or "")))
    return sorted(found)


def _report(out: TextIO, crm: str, summary: RunSummary, seconds: float, pocs: list[tuple[str, str]]) -> None:
    statuses = Counter(summary.statuses)
    out.write(f"\n== {crm}: full sync {summary.status} in {seconds:.1f} s ==\n")
    out.write(f"  open deals assessed     {summary.deals.get('assessed', 0):>5}\n")
    for status in STATUS_ORDER:
        out.write(f"    {status:<22}{statuses.get(status, 0):>5}\n")
    out.write(f"  deals written           {summary.deals.get('written', 0):>5}\n")
    created = summary.tasks.get("created", 0)
    out.write(f"  follow-up tasks created {created:>5}  (one per unqualified deal, owned by its rep)\n")
    out.write(f"  API calls used          {summary.api_calls:>5}\n")
    if pocs:
        out.write(f"  POCs flagged before they start ({len(pocs)}), e.g.:\n")
        for name, missing in pocs[:5]:
            out.write(f"    - {name}: missing {missing.replace(';', ', ')}\n")


def _rerun(out: TextIO, crm: str, summary: RunSummary) -> bool:
    writes = summary.deals.get("written", 0)
    created = summary.tasks.get("created", 0)
    out.write(
        f"  rerun: {writes} deals rewritten, {created} tasks created, {summary.api_calls} API calls"
        + (
            "  -> nothing rewritten, no duplicate task\n"
            if writes == 0 and created == 0
            else "  (unexpected!)\n"
        )
    )
    return writes == 0 and created == 0


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    if not args.log_level:
        configure_logging("warning", args.log_format or "auto")
    out.write("Starting the sandbox CRM (Salesforce + HubSpot stand-in) with the track-selling story…\n")
    out.write("The story: 65 POCs signed without BANT, 1 converted; 20 qualified POCs, 16 closed.\n")
    ok = True
    with (
        tempfile.TemporaryDirectory(prefix="bant-sync-demo-") as tmp,
        Sandbox.start(SandboxOptions(seed="track-selling", seed_value=args.seed_value)) as sb,
    ):
        config = Path(tmp) / "demo.toml"
        sb.write_config(config)
        demo_settings = load_settings(str(config), environ={})
        out.write("\n== setup ==\n")
        out.flush()
        setup_args = argparse.Namespace(connection=None, check=False, quiet=True)
        if run_setup(setup_args, demo_settings) != exit_codes.OK:
            ok = False
        worker = Worker(demo_settings)
        try:
            for crm in ("salesforce", "hubspot"):
                started = time.perf_counter()
                first = worker.run(RunRequest(crm, mode="full", trigger="demo"))
                _report(out, crm, first, time.perf_counter() - started, _flagged_pocs(sb, crm))
                second = worker.run(RunRequest(crm, mode="full", trigger="demo"))
                ok = _rerun(out, crm, second) and ok and first.status == "succeeded"
        finally:
            worker.close()
    out.write(
        "\nEvery flag and task above lives in the CRM, where reps work. Try it yourself:\n"
        "  .venv/bin/bant-sync sandbox --seed track-selling --write-config /tmp/sandbox.toml\n"
        "  .venv/bin/bant-sync --config /tmp/sandbox.toml sync --connection hubspot --dry-run\n"
    )
    return exit_codes.OK if ok else exit_codes.FAILURE


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help="one full sync against the built-in sandbox CRM, then a rerun (no credentials, no network)",
        description=(
            "Start the sandbox CRM in this process with the track-selling seed, run setup, one full sync "
            "against Salesforce and HubSpot, show what was flagged, then run again to show nothing is "
            "rewritten or duplicated."
        ),
    )
    parser.add_argument("--seed-value", type=int, default=7, help="seed of the sandbox data (default 7)")
    parser.set_defaults(handler=run_demo)
