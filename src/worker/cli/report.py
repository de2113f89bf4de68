"""`bant-sync report`: does qualifying pay off? Win rates by qualification at entry, compliance by owner and
team, its trend, and what flags led to — as HTML with charts, PNG, CSV and JSON."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from worker.cli.arguments import parse_day
from worker.config.settings import Settings
from worker.errors import UsageError
from worker.report.build import ReportRequest, report_on
from worker.report.model import OutcomeReport
from worker.report.render import cohort_csv, report_json, summary_lines, write_report
from worker.service import Worker

DEFAULT_DAYS = 365
DEFAULT_OUTPUT = "bant-sync-report"


class ReadProgress:
    """How many closed deals have been read, on one terminal line (nothing when stderr is not a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, count: int) -> None:
        if self.stream.isatty():
            self.stream.write(f"\rreading closed deals and their history: {count:,}")
            self.stream.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")


def request_from(args: argparse.Namespace, settings: Settings, today: date) -> ReportRequest:
    connection = settings.connection(args.connection)
    until = args.until or today
    since = args.since or until - timedelta(days=DEFAULT_DAYS)
    if since > until:
        raise UsageError(f"--since {since} is after --until {until}: give the earlier day first")
    framework = args.framework or connection.framework
    teams = tuple((t.name, t.members) for t in settings.digest.teams)
    return ReportRequest(connection.name, since, until, framework, args.entry_stage or None, teams)


def make_report(args: argparse.Namespace, settings: Settings) -> OutcomeReport:
    worker = Worker(settings)
    progress = ReadProgress(sys.stderr)
    try:
        return report_on(worker, request_from(args, settings, worker.today()), progress)
    finally:
        progress.done()
        worker.close()


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    report = make_report(args, settings)
    output = args.output or (DEFAULT_OUTPUT if args.format == "html" else None)
    if output:
        files = write_report(report, Path(output))
    if args.format == "json":
        sys.stdout.write(json.dumps(report_json(report), indent=2) + "\n")
    elif args.format == "csv":
        sys.stdout.write(cohort_csv(report))
    else:
        sys.stdout.write("\n".join(summary_lines(report)) + "\n")
    if args.format != "html":
        for note in report.notes:
            sys.stderr.write(f"bant-sync: note: {note}\n")
    if output:
        sys.stderr.write(f"report written: {files.html.resolve()}\n")
    return 0


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=[common],
        help="does qualifying pay off? win rates by qualification at entry, compliance by owner",
        description=(
            "Read the deals closed in a period with their field history from the CRM, judge each one as it "
            "stood when it entered (created, or the --entry-stage), and compare the win rates of deals "
            "qualified at entry with those that were not (95% intervals, Fisher's exact test); then the "
            "open pipeline's compliance by owner and team, its weekly trend from the audit log, and what "
            "flags led to. --format html (the default) prints a summary and writes report.html (charts "
            "embedded, opens from disk), PNG charts, cohorts.csv and report.json into --output; json and "
            "csv print to stdout and write the files only with --output. Exit codes: 0 ok, 1 the CRM "
            "failed, 2 bad arguments, 3 invalid configuration."
        ),
    )
    parser.add_argument("--connection", metavar="NAME", help="the connection (default: the only one)")
    parser.add_argument(
        "--since", type=parse_day, metavar="YYYY-MM-DD", help="first close date (default: a year before)"
    )
    parser.add_argument(
        "--until", type=parse_day, metavar="YYYY-MM-DD", help="last close date (default: today)"
    )
    parser.add_argument(
        "--framework", metavar="NAME|PATH", help="judge with this framework (default: the connection's)"
    )
    parser.add_argument(
        "--entry-stage",
        metavar="STAGE",
        help="judge each deal when it first entered this CRM stage (default: when it was created)",
    )
    parser.add_argument("--format", choices=("html", "json", "csv"), default="html", help="what to print")
    parser.add_argument(
        "--output", metavar="DIR", help=f"write every file here (default for html: ./{DEFAULT_OUTPUT})"
    )
    parser.set_defaults(handler=run_report)
