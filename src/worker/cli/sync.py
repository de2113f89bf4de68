"""`bant-sync sync`: one run now (manual resync), with a summary, `--json`, and progress on a terminal."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.text import Text

from worker import exit_codes
from worker.config.settings import Settings
from worker.errors import UsageError
from worker.service import Worker
from worker.state import LeaseHeldError
from worker.state.model import RunMode, RunStatus, Trigger
from worker.sync.owners import resolve_owner
from worker.sync.run_model import RunRequest, RunSummary

EXIT_FOR_STATUS = {
    RunStatus.SUCCEEDED: exit_codes.OK,
    RunStatus.FAILED: exit_codes.FAILURE,
    RunStatus.QUOTA_STOPPED: exit_codes.QUOTA_STOPPED,
    RunStatus.STOPPED: exit_codes.INTERRUPTED,
}


def exit_code_for(summary: RunSummary) -> int:
    code = EXIT_FOR_STATUS.get(summary.status, exit_codes.FAILURE)
    rejected = summary.deals.get("rejected", 0) + summary.tasks.get("rejected", 0)
    if code == exit_codes.OK and rejected:
        return exit_codes.ROWS_REJECTED
    return code


def request_from(args: argparse.Namespace, connection: str, trigger: str = Trigger.CLI) -> RunRequest:
    if args.deal and args.owner:
        raise UsageError("--deal and --owner cannot be combined: choose one scope")
    if (args.deal or args.owner) and args.full:
        raise UsageError("--full sweeps every open deal; it cannot be combined with --deal or --owner")
    mode = (
        RunMode.DEAL
        if args.deal
        else RunMode.OWNER
        if args.owner
        else RunMode.FULL
        if args.full
        else RunMode.INCREMENTAL
    )
    return RunRequest(connection, mode, args.deal, args.owner, args.dry_run, trigger)


class DealRate(ProgressColumn):
    """The read rate in deals a second (rich's own estimate over the last 30 s)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- deals/s" if speed is None else f"{speed:,.1f} deals/s", style="progress.data.speed")


class SyncProgress:
    """The progress bar of `sync` on stderr (rich): the connection, deals read of the run's total (an
    indeterminate bar when the CRM gives none), the rate and the time left. Drawn on `console` (from
    `stderr_console`: None when stderr is not a terminal, or with --json: then nothing is shown). It wants
    the total from the CRM (Salesforce: one extra API call) only when it is shown, and it clears itself
    when the run ends, before the summary is printed on stdout."""

    def __init__(self, connection: str, console: Console | None) -> None:
        self.connection = connection
        self.console = console
        self.wants_total = console is not None and console.is_terminal
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int | None) -> None:
        if not self.wants_total or self._bar is not None:
            return
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            DealRate(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
            redirect_stdout=False,
        )
        self._bar.start()
        name = escape(self.connection)
        self._task = self._bar.add_task(name, total=total, count=_count(0, total))

    def __call__(self, read: int, written: int) -> None:
        if self._bar is None or self._task is None:
            return
        total = self._bar.tasks[0].total
        if total is not None and read > total:
            total = read  # deals changed after the count, or snoozes that ended: the total grows
        total_int = None if total is None else int(total)
        self._bar.update(self._task, completed=read, total=total, count=_count(read, total_int))

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._task = None, None


def stderr_console() -> Console | None:
    """A rich console on stderr when stderr is a terminal; None (no progress bar) when it is not."""
    console = Console(stderr=True)
    return console if sys.stderr.isatty() and console.is_terminal else None


def _count(read: int, total: int | None) -> str:
    return f"{read:,} deals read" if total is None else f"{read:,} of {total:,} deals"


def format_summary(summary: RunSummary) -> str:
    body = summary.as_json()
    deals, tasks = body["deals"], body["tasks"]
    verb = "would write" if summary.dry_run else "written"
    lines = [
        f"{summary.connection}: {summary.mode} run {summary.run_id} {summary.status}"
        + (" (dry run: nothing was written)" if summary.dry_run else ""),
        f"  deals   read {deals['read']:,}  {verb} {deals.get('would_write', deals['written']):,}  "
        f"unchanged {deals['unchanged']:,}  rejected {deals['rejected']:,}",
        f"  tasks   created {tasks['created']:,}  updated {tasks['updated']:,}  "
        f"completed {tasks['completed']:,}"
        + "".join(f"  {name} {tasks[name]:,}" for name in ("reopened", "rejected", "held") if tasks.get(name))
        + (f"  (checked in the CRM: {tasks['checked']:,})" if tasks.get("checked") else ""),
        "  status  " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary.statuses.items())),
        f"  api calls {summary.api_calls:,}",
    ]
    if summary.error:
        lines.append(f"  error: {summary.error}")
    lines.extend(rejection_lines(summary.rejections, len(summary.rejections), SHOWN_REJECTIONS))
    if summary.dry_run and summary.planned:
        lines.append("  planned writes:")
        for item in summary.planned:
            lines.append("    " + _planned_line(item))
    return "\n".join(lines)


SHOWN_REJECTIONS = 10
"""Rejected rows the human-readable summary lists; `sync --json` and GET /runs/{id} have them all."""


def rejection_lines(
    shown: Sequence[Mapping[str, Any]], total: int, limit: int, title: str = "rejected rows"
) -> list[str]:
    """`  <title> (N):` then one line per row (`operation deal_id code: message`), at most `limit` of
    them, and `... and K more` for the rest; nothing when there is none."""
    if not total:
        return []
    indent = "  "
    lines = [f"{indent}{title} ({total:,}):"]
    for row in shown[:limit]:
        message = " ".join(str(row.get("message") or "").split())
        lines.append(
            f"{indent}  {row['operation']:<13} {row['deal_id']}  {row.get('code') or '-'}"
            + (f": {message}" if message else "")
        )
    rest = total - min(len(shown), limit)
    if rest > 0:
        lines.append(f"{indent}  ... and {rest:,} more")
    return lines


def _planned_line(item: dict[str, Any]) -> str:
    if item["kind"] == "status":
        missing = ", ".join(item["missing"]) or "-"
        return f"status {item['deal_id']}: {item['from'] or '(none)'} -> {item['to']} (missing: {missing})"
    return f"task   {item['deal_id']}: {item['action']}"


@contextmanager
def stop_on_signals(worker: Worker) -> Iterator[None]:
    """SIGTERM/SIGINT: let the current page finish and checkpoint (or cut a long wait short), then stop."""

    def handler(signum: int, frame: FrameType | None) -> None:
        worker.stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    names = (
        [args.connection] if args.connection else [n for n, c in settings.connections.items() if c.enabled]
    )
    if not names:
        settings.connection(None)
        sys.stderr.write(
            "bant-sync: every configured connection is disabled (enabled = false): nothing to sync\n"
        )
        return exit_codes.OK
    worker = Worker(settings)
    summaries: list[RunSummary] = []
    code = exit_codes.OK
    try:
        with stop_on_signals(worker):
            for name in names:
                request = request_from(args, name)
                if request.owner_id:
                    owner = resolve_owner(
                        worker.store, name, request.owner_id, worker.connector, worker.clock
                    )
                    request = RunRequest(name, request.mode, None, owner, request.dry_run, request.trigger)
                progress = SyncProgress(name, None if args.json else stderr_console())
                try:
                    summary = worker.run(request, progress=progress)
                except LeaseHeldError as exc:
                    progress.done()
                    sys.stderr.write(f"bant-sync: {exc}\n")
                    code = max(code, exit_codes.LEASE_HELD)
                    continue
                finally:
                    progress.done()
                summaries.append(summary)
                code = max(code, exit_code_for(summary))
    finally:
        worker.close()
    if args.json:
        if args.connection or len(summaries) == 1:
            payload: dict[str, Any] = summaries[0].as_json() if summaries else {}
        else:
            payload = {"runs": [s.as_json() for s in summaries]}
        if payload:
            sys.stdout.write(json.dumps(payload) + "\n")
    else:
        for summary in summaries:
            sys.stdout.write(format_summary(summary) + "\n")
    return code


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sync",
        parents=[common],
        help="run one sync now (manual resync)",
        description=(
            "Run one sync now and print its summary: pull changed open deals, assess them, write back what "
            "changed and keep one follow-up task per unqualified deal. Without --connection, every "
            "enabled connection runs in turn. Exit codes: 0 ok, 1 failed, 5 another run holds the "
            "lease (the message names it), 6 stopped for API quota (resumes next run), 7 some rows "
            "rejected by the CRM."
        ),
    )
    parser.add_argument("--connection", metavar="NAME", help="the connection to sync (default: all)")
    parser.add_argument("--full", action="store_true", help="sweep every open deal, not only changed ones")
    parser.add_argument("--deal", metavar="ID", help="resync one deal")
    parser.add_argument(
        "--owner", metavar="ID|EMAIL", help="resync every open deal of one owner, by id or e-mail"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="read and assess, write nothing, list what would be written"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print exactly one JSON object on stdout (with several connections: {"runs": [...]})',
    )
    parser.set_defaults(handler=run_sync)
