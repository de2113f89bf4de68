"""`bant-sync demo`: the sandbox CRM with the track-selling story, one full sync per CRM, a rerun, then reps
at work in the CRM and the nightly sweep repairing what they did.

No credentials and no network: the sandbox runs in this process on 127.0.0.1, and the real client
libraries talk to it. What the demo reports about the CRM is read back from the CRM itself; it exits
non-zero when a run fails or the promise (exactly one open task per unqualified deal) does not hold.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from rules import Status
from rules.snooze import IGNORED_NOTE
from sandbox import People, Sandbox, SandboxOptions, TaskInfo
from worker import exit_codes
from worker.cli.report import DEFAULT_DAYS
from worker.cli.status import run_setup
from worker.config.loader import load_settings
from worker.config.settings import Settings
from worker.logging_setup import configure_logging
from worker.report.build import ReportRequest, report_on
from worker.report.render import summary_lines, write_report
from worker.service import Worker
from worker.sync.run_model import RunRequest, RunSummary

STATUS_ORDER = ("poc_unqualified", "qualify_out", "needs_qualification", "qualified", "not_evaluated")
UNQUALIFIED = frozenset(status.value for status in Status if status.is_unqualified)


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


@dataclass(frozen=True)
class Scene:
    """What the reps did: the deal whose task was deleted (and that task), the deal whose task was marked
    done without BANT (and that task), the flagged POC whose BANT was filled in (and its task), the
    qualified deal given a "TBC" budget, the deal snoozed with a reason (and its task), the flagged POC a
    rep tried to snooze (and its task)."""

    deleted: tuple[str, str]
    completed: tuple[str, str]
    fixed: tuple[str, str]
    tbc: str
    snoozed: tuple[str, str]
    refused: tuple[str, str]


SNOOZE_REASON = "Customer's budget cycle opens in January"


def reps_at_work(out: TextIO, people: People, today: date) -> Scene | None:
    """One rep deletes a task, one marks a task done without filling in BANT, one fills in BANT on a
    flagged POC, one types "TBC" into the Budget of a qualified POC, one snoozes a flagged deal for two
    weeks with a reason, one tries to snooze a flagged POC (each a different deal, picked by name). None
    when the CRM has no such deals."""
    deals = people.deals()
    tasks = {t["deal_id"]: t["id"] for t in people.bant_tasks() if t["open"]}
    by_name = sorted((str(deal["name"]), deal_id) for deal_id, deal in deals.items() if deal["open"])
    taken: set[str] = set()

    def pick(status: str, poc: bool, with_task: bool) -> str | None:
        for _, deal_id in by_name:
            deal = deals[deal_id]
            if deal_id in taken or deal["status"] != status or deal["poc"] != poc:
                continue
            if with_task == (deal_id in tasks):
                taken.add(deal_id)
                return deal_id
        return None

    deleted, completed = pick("needs_qualification", False, True), pick("needs_qualification", False, True)
    fixed, tbc = pick("poc_unqualified", True, True), pick("qualified", True, False)
    snoozed, refused = pick("needs_qualification", False, True), pick("poc_unqualified", True, True)
    if None in (deleted, completed, fixed, tbc, snoozed, refused):
        out.write("  reps at work: the CRM has no deals to play the scene on (unexpected!)\n")
        return None
    assert deleted and completed and fixed and tbc and snoozed and refused
    until = today + timedelta(days=14)
    people.delete_task(tasks[deleted])
    people.complete_task(tasks[completed])
    people.fix_bant(fixed)
    people.set_deal_field(tbc, "budget", "TBC")
    people.snooze(snoozed, until, SNOOZE_REASON)
    people.snooze(refused, until, SNOOZE_REASON)
    out.write("  reps at work in the CRM:\n")
    out.write(f"    - a rep deletes the task on {deals[deleted]['name']}\n")
    out.write(f"    - a rep marks the task on {deals[completed]['name']} done, BANT still missing\n")
    out.write(f"    - a rep fills in BANT on the flagged POC {deals[fixed]['name']}\n")
    out.write(f'    - a rep types "TBC" into the Budget of the qualified POC {deals[tbc]["name"]}\n')
    out.write(f'    - a rep snoozes {deals[snoozed]["name"]} until {until}: "{SNOOZE_REASON}"\n')
    out.write(f"    - a rep tries the same snooze on the flagged POC {deals[refused]['name']}\n")
    return Scene(
        (deleted, tasks[deleted]),
        (completed, tasks[completed]),
        (fixed, tasks[fixed]),
        tbc,
        (snoozed, tasks[snoozed]),
        (refused, tasks[refused]),
    )


def sweep_report(out: TextIO, people: People, scene: Scene, summary: RunSummary) -> bool:
    """What the sweep after the scene did, read back from the CRM: the deleted task recreated, the one
    marked done reopened, the fixed POC's task completed, the TBC deal flagged with a new task; and
    whether the run's own counts agree."""
    deals = people.deals()
    tasks = people.bant_tasks()
    open_on = {deal_id: [t for t in tasks if t["open"] and t["deal_id"] == deal_id] for deal_id in deals}
    by_id = {t["id"]: t for t in tasks}
    deleted_deal, deleted_task = scene.deleted
    completed_deal, completed_task = scene.completed
    fixed_deal, fixed_task = scene.fixed
    snoozed_deal, snoozed_task = scene.snoozed
    refused_deal, refused_task = scene.refused
    reopened_task: TaskInfo | None = by_id.get(completed_task)
    done = {
        "recreated": len(open_on[deleted_deal]) == 1 and open_on[deleted_deal][0]["id"] != deleted_task,
        "reopened": reopened_task is not None and [reopened_task] == open_on[completed_deal],
        "completed": deals[fixed_deal]["status"] == "qualified"
        and fixed_task in by_id
        and not by_id[fixed_task]["open"],
        "flagged": deals[scene.tbc]["status"] in UNQUALIFIED and len(open_on[scene.tbc]) == 1,
        "snoozed": deals[snoozed_deal]["status"] == Status.SNOOZED.value
        and snoozed_task in by_id
        and not by_id[snoozed_task]["open"],
        "refused": deals[refused_deal]["status"] == Status.POC_UNQUALIFIED.value
        and [t["id"] for t in open_on[refused_deal]] == [refused_task],
    }
    out.write(
        "  the nightly sweep (a full sync): "
        + ", ".join(f"{what} {int(seen)}" for what, seen in done.items())
        + f"  ({summary.api_calls} API calls)\n"
    )
    if reopened_task is not None and done["reopened"]:
        first_line = str(reopened_task["body"] or "").partition("\n")[0]
        out.write(f'    the reopened task now starts: "{first_line}"\n')
    if done["snoozed"]:
        first_line = str(by_id[snoozed_task]["body"] or "").partition("\n")[0]
        out.write(f'    the snoozed deal\'s task was completed with: "{first_line}"\n')
    if done["refused"]:
        why = next(
            (
                line
                for line in str(by_id[refused_task]["body"] or "").splitlines()
                if line.startswith(IGNORED_NOTE)
            ),
            "",
        )
        out.write(f'    the POC stays flagged; its task says: "{why}"\n')
    expected = {"created": 2, "reopened": 1, "completed": 2}
    reported = {key: summary.tasks.get(key, 0) for key in expected}
    if summary.status != "succeeded" or reported != expected or not all(done.values()):
        out.write(
            f"    (unexpected! the run {summary.status}, reported tasks {reported}, expected {expected})\n"
        )
        return False
    return True


def promise_report(out: TextIO, people: People) -> bool:
    """Exactly one open bant-sync task per open unqualified deal and none elsewhere, counted in the CRM."""
    deals = people.deals()
    open_tasks = Counter(t["deal_id"] for t in people.bant_tasks() if t["open"])
    unqualified = {d for d, deal in deals.items() if deal["open"] and deal["status"] in UNQUALIFIED}
    one_each = sum(1 for deal_id in unqualified if open_tasks[deal_id] == 1)
    total = sum(open_tasks.values())
    holds = one_each == len(unqualified) == total
    counts = f"{len(unqualified)} unqualified deals, {total} open follow-up tasks"
    if holds:
        out.write(f"  the promise holds: {counts}, exactly one on each\n")
    else:
        out.write(f"  the promise is BROKEN: {counts}, {one_each} of those deals with exactly one\n")
    return holds


def outcome_report(out: TextIO, worker: Worker, crm: str, directory: Path) -> bool:
    """The closed history judged at POC start: the cohort table, and the HTML report written to disk."""
    today = worker.today()
    framework_name = worker.settings.connection(crm).framework
    report = report_on(
        worker, ReportRequest(crm, today - timedelta(days=DEFAULT_DAYS), today, framework_name)
    )
    files = write_report(report, directory)
    out.write(f"\n== {crm}: does qualifying pay off? (bant-sync report) ==\n")
    out.write("\n".join(summary_lines(report)) + "\n")
    out.write(f"  report with charts: {files.html.resolve()}\n")
    pocs = report.sections[0].comparison
    return (pocs.first.won, pocs.first.closed, pocs.second.won, pocs.second.closed) == (16, 20, 3, 65)


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    out = sys.stdout
    if not args.log_level:
        configure_logging("warning", args.log_format or "auto")
    out.write("Starting the sandbox CRM (Salesforce + HubSpot stand-in) with the track-selling story…\n")
    out.write("The story: 65 POCs signed without BANT, 3 won; 20 qualified POCs, 16 won.\n")
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
        setup_args = argparse.Namespace(connection=None, check=False, quiet=True, create_inputs=False)
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
                people = sb.people(crm)
                scene = reps_at_work(out, people, worker.today())
                if scene is None:
                    ok = False
                    continue
                sweep = worker.run(RunRequest(crm, mode="full", trigger="demo"))
                ok = sweep_report(out, people, scene, sweep) and ok
                ok = promise_report(out, people) and ok
            for crm in ("salesforce", "hubspot"):
                ok = outcome_report(out, worker, crm, Path(args.report_dir) / crm) and ok
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
        help="one full sync against the built-in sandbox CRM, a rerun, then reps at work and the nightly "
        "sweep (no credentials, no network)",
        description=(
            "Start the sandbox CRM in this process with the track-selling seed, run setup, one full sync "
            "against Salesforce and HubSpot, show what was flagged, then run again to show nothing is "
            "rewritten or duplicated. Then reps delete a task, mark one done without BANT, fill in BANT "
            "on a flagged POC and type TBC into a qualified deal's budget, and a full sweep repairs it "
            "all: exactly one open task per unqualified deal (exit 1 if that does not hold). Last, the "
            "outcome report reads the closed POCs' field history and compares the win rates of POCs "
            "qualified when they started with the rest, and writes it as HTML with charts."
        ),
    )
    parser.add_argument("--seed-value", type=int, default=7, help="seed of the sandbox data (default 7)")
    parser.add_argument(
        "--report-dir",
        default="build/demo-report",
        metavar="DIR",
        help="where the outcome reports are written, one folder per CRM (default build/demo-report)",
    )
    parser.set_defaults(handler=run_demo)
