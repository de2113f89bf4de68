"""`bant-sync digest`: send this week's digest (each owner's flagged deals, each manager's team rollup) by
e-mail and/or Slack, at most once per recipient, channel and week; `--dry-run` prints it instead."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from worker import exit_codes
from worker.config.settings import DIGEST_CHANNELS, Settings
from worker.digest.run import (
    ALREADY_SENT,
    FAILED_NOW,
    IN_DOUBT,
    SENT_NOW,
    WOULD_SEND,
    WOULD_SKIP,
    DigestReport,
    DigestRequest,
    Senders,
    run_digest,
)
from worker.digest.week import IsoWeek
from worker.service import Worker

_sleep: Callable[[float], None] = time.sleep
"""How a delivery waits before its retry (tests replace it: no test waits real seconds)."""


def _week(text: str) -> IsoWeek:
    try:
        return IsoWeek.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def format_report(report: DigestReport) -> str:
    """Each recipient's outcome per channel, then the counts, for people."""
    lines = [f"digest {report.week} on {report.connection}:"]
    if not report.outcomes:
        lines.append("  nobody to send to: no flagged deal has an owner or manager the digest can reach")
    width = max((len(o.recipient) for o in report.outcomes), default=0)
    for o in report.outcomes:
        detail = f": {o.detail}" if o.detail else ""
        lines.append(f"  {o.recipient.ljust(width)}  {o.channel:<5}  {o.result}{detail}")
    if report.unreachable:
        lines.append(
            "  not reachable (no e-mail or inactive in the CRM, or no owner): "
            + ", ".join(report.unreachable)
        )
    counts = Counter(o.result for o in report.outcomes)
    if any(o.result in (WOULD_SEND, WOULD_SKIP) for o in report.outcomes):
        summary = (
            f"{counts[WOULD_SEND]} would be sent, {counts[WOULD_SKIP]} already sent (dry run: nothing sent)"
        )
    else:
        summary = (
            f"{counts[SENT_NOW]} sent, {counts[ALREADY_SENT]} skipped (already sent), "
            f"{counts[FAILED_NOW]} failed, {counts[IN_DOUBT]} in doubt"
        )
    lines.append(f"{report.connection} {report.week}: {summary}")
    return "\n".join(lines)


def format_previews(report: DigestReport) -> str:
    """A dry run's messages: each recipient's subject and text part."""
    blocks = []
    for digest, rendered in report.previews:
        rule = "=" * 72
        blocks.append(
            f"{rule}\nTo: {digest.name} <{digest.recipient}>\nSubject: {rendered.subject}\n\n{rendered.text}"
        )
    return "\n".join(blocks)


def run_digest_command(args: argparse.Namespace, settings: Settings) -> int:
    names = (
        [args.connection] if args.connection else [n for n, c in settings.connections.items() if c.enabled]
    )
    if not names:
        settings.connection(None)
        sys.stderr.write("bant-sync: every configured connection is disabled (enabled = false): no digest\n")
        return exit_codes.OK
    for name in names:
        settings.connection(name)
    channels = (args.channel,) if args.channel else settings.digest.channels
    worker = Worker(settings)
    code = exit_codes.OK
    try:
        week = args.week or IsoWeek.of(worker.today())
        senders = Senders(settings, worker.clock)
        for name in names:
            request = DigestRequest(
                connection=name,
                week=week,
                channels=tuple(channels),
                dry_run=args.dry_run,
                resend_uncertain=args.resend_uncertain,
                only_to=args.to,
            )
            report = run_digest(worker, request, senders, sleep=lambda seconds: _sleep(seconds))
            if args.dry_run and report.previews:
                sys.stdout.write(format_previews(report) + "\n")
            sys.stdout.write(format_report(report) + "\n")
            if not report.complete:
                code = exit_codes.FAILURE
    finally:
        worker.close()
    return code


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "digest",
        parents=[common],
        help="send the weekly digest of flagged deals by e-mail and/or Slack",
        description=(
            "Send each owner the list of their flagged deals (what is missing, since when, a link to the "
            "deal in the CRM) and each manager the rollup of their team, by e-mail and/or Slack, from what "
            "the last sync recorded. Each recipient gets one message per channel and week: a rerun sends "
            "only what failed. Without --connection, every enabled connection. Exit codes: 0 every "
            "message delivered (now or earlier this week), 1 some delivery failed or is in doubt (listed; "
            "a rerun retries the failed ones), 3 a setting the channel needs is missing."
        ),
    )
    parser.add_argument("--connection", metavar="NAME", help="the connection whose deals (default: all)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print each recipient's message; send and record nothing"
    )
    parser.add_argument(
        "--week", type=_week, metavar="YYYY-Www", help="the ISO week it is for (default: this week)"
    )
    parser.add_argument(
        "--channel", choices=DIGEST_CHANNELS, help="only this channel (default: [digest] channels)"
    )
    parser.add_argument("--to", metavar="EMAIL", help="only this recipient")
    parser.add_argument(
        "--resend-uncertain",
        action="store_true",
        help="send again the deliveries an interrupted run left in doubt (they may arrive twice)",
    )
    parser.set_defaults(handler=run_digest_command)
