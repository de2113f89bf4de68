"""`bant-sync status` and `bant-sync setup`: what the worker knows, and making a CRM ready."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from rules.errors import BantSyncError
from rules.model import Status
from worker import exit_codes
from worker.cli.sync import rejection_lines
from worker.config.settings import Settings
from worker.report.snoozes import REFUSED_DAYS, current_snooze_json, read_snoozes
from worker.service import Worker, utc_now
from worker.state import Lease, StateStore, StreamPosition
from worker.sync.run_model import RunSummary

SHOWN_REJECTIONS = 5
"""Rejected rows of the last run `status` shows; GET /runs/{id} has them all."""
SHOWN_SNOOZES = 10
"""Current snoozes `status` lists (the soonest end first); the rest are counted ("and N more")."""
STATUS_ORDER = tuple(status.value for status in Status)
"""How `status` lists the deal counts: the statuses in their own order (snoozed last), then any other."""


def last_run_rejections(store: StateStore, name: str, limit: int = SHOWN_REJECTIONS) -> dict[str, Any] | None:
    """The rows the CRM refused in the connection's last run that wrote (dry runs write nothing): its run
    id, how many, and the first `limit` of them; None when no such run is among the last 20."""
    last = next((r for r in store.list_runs(name, limit=20) if not r.dry_run), None)
    if last is None:
        return None
    return {
        "run_id": last.run_id,
        "count": store.rejection_count(last.run_id),
        "first": [r.as_json() for r in store.run_rejections(last.run_id, limit)],
    }


def _holder_json(lease: Lease) -> dict[str, Any]:
    """The run holding a lease, and the process and last heartbeat that keep it (None before schema v3)."""
    process = lease.holder
    return {
        "run_id": lease.run_id,
        "expires_at": lease.expires_at.isoformat(),
        "host": process.host if process is not None else None,
        "pid": process.pid if process is not None else None,
        "heartbeat_at": lease.heartbeat_at.isoformat() if lease.heartbeat_at is not None else None,
    }


def unqualified_by_owner(store: StateStore, name: str) -> list[dict[str, Any]]:
    """Unqualified deals per owner, most first, each named from the owners cache where it is known: `name`
    and `email` are None for an owner the cache does not hold (yet), and `owner_id` is None for deals
    without an owner."""
    cached = {o.id: o for o in store.owners(name)}
    rows = []
    for owner_id, count in store.unqualified_by_owner(name).items():
        owner = cached.get(owner_id)
        rows.append(
            {
                "owner_id": owner_id or None,
                "name": owner.name if owner is not None else None,
                "email": owner.email if owner is not None else None,
                "unqualified": count,
            }
        )
    return sorted(rows, key=lambda r: (-r["unqualified"], r["name"] or r["owner_id"] or ""))


def owner_label(row: Mapping[str, Any]) -> str:
    """How a person reads an owner: the name where known, else the CRM id, else "(no owner)"."""
    return str(row["name"] or row["owner_id"] or "(no owner)")


def snoozes_status(store: StateStore, name: str, now: datetime, limit: int = SHOWN_SNOOZES) -> dict[str, Any]:
    """The connection's snoozes: how many deals are snoozed, the first `limit` (the soonest end first) with
    owner, date, who snoozed and why, how many more, and how many snoozes the rules refused in the last
    REFUSED_DAYS days."""
    found = read_snoozes(store, name, now, REFUSED_DAYS)
    return {
        "snoozed": len(found.current),
        "shown": [current_snooze_json(s) for s in found.current[:limit]],
        "more": max(0, len(found.current) - limit),
        f"refused_last_{REFUSED_DAYS}_days": len(found.refused),
    }


def ordered_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The status counts in STATUS_ORDER (unknown statuses after, by name)."""
    rank = {status: i for i, status in enumerate(STATUS_ORDER)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


LAG_WINDOW = timedelta(hours=1)
"""`status` shows the quantiles of the event-to-write-back lags of the last hour."""


def _stream_json(position: StreamPosition | None) -> dict[str, str | None] | None:
    if position is None:
        return None
    return {
        "position": position.position,
        "event_at": None if position.event_at is None else position.event_at.isoformat(),
        "saved_at": position.saved_at.isoformat(),
    }


def lag_line(lag: Mapping[str, Any] | None) -> str | None:
    """ "p50 1.9 s, p95 3.8 s, p99 4.1 s, max 4.4 s over the last hour (42 re-assessments)", or None."""
    if not lag or not lag.get("count"):
        return None
    quantiles = ", ".join(
        f"{label} {lag[key]:.1f} s"
        for label, key in (("p50", "p50_s"), ("p95", "p95_s"), ("p99", "p99_s"), ("max", "max_s"))
    )
    return f"{quantiles} over the last hour ({_counted(int(lag['count']), 're-assessment')})"


def connection_status(store: StateStore, name: str, runs: int) -> dict[str, Any]:
    now = utc_now()
    cursor = store.get_cursor(name)
    holder = store.lease_holder(name, now)
    return {
        "connection": name,
        "cursor": None
        if cursor is None
        else {"modified_at": cursor.modified_at.isoformat(), "deal_id": cursor.deal_id},
        "lease_holder": None if holder is None else _holder_json(holder),
        "deals_by_status": store.status_counts(name),
        "unqualified_by_owner": unqualified_by_owner(store, name),
        "snoozes": snoozes_status(store, name, now),
        "events": store.event_counts(name),
        "event_lag": store.lag_stats(name, now - LAG_WINDOW).as_json(),
        "stream": _stream_json(store.stream_position(name)),
        "runs": [
            {**RunSummary.of_record(r).as_json(with_rejections=False), "counts": dict(r.counts)}
            for r in store.list_runs(name, limit=runs)
        ],
        "last_run_rejections": last_run_rejections(store, name),
    }


def _counted(count: int, one: str, many: str = "") -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _print_status(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"{report['connection']}\n")
    cursor = report["cursor"]
    position = (
        f"{cursor['modified_at']} / {cursor['deal_id']}" if cursor else "(none: the next run is a first run)"
    )
    out.write(f"  cursor        {position}\n")
    holder = report["lease_holder"]
    lease = "free"
    if holder:
        process = f" on {holder['host']} pid {holder['pid']}" if holder["host"] else ""
        beat = f", last heartbeat {holder['heartbeat_at']}" if holder["heartbeat_at"] else ""
        lease = f"held by run {holder['run_id']}{process} until {holder['expires_at']}{beat}"
    out.write(f"  lease         {lease}\n")
    counts = report["deals_by_status"]
    out.write(
        "  deals         "
        + (", ".join(f"{k} {v:,}" for k, v in ordered_counts(counts)) or "(none yet)")
        + "\n"
    )
    owners = report["unqualified_by_owner"]
    if owners:
        shown = ", ".join(f"{owner_label(row)} {row['unqualified']}" for row in owners[:10])
        out.write(f"  unqualified by owner: {shown}\n")
    for line in snooze_lines(report.get("snoozes")):
        out.write(line + "\n")
    events = report.get("events") or {}
    if events.get("received") or events.get("dirty"):
        received, duplicates = events["received"], _counted(events["duplicates"], "duplicate")
        echoes, waiting = _counted(events["echoes"], "echo", "echoes"), _counted(events["dirty"], "deal")
        out.write(
            f"  events        {received:,} received, {duplicates}, {echoes}; {waiting} waiting for "
            "re-assessment\n"
        )
    lag = lag_line(report.get("event_lag"))
    if lag is not None:
        out.write(f"  event lag     {lag}\n")
    stream = report.get("stream")
    if stream:
        when = f", event of {stream['event_at'][:19]}" if stream.get("event_at") else ""
        out.write(
            f"  stream        resumes after {stream['position']}{when} (saved {stream['saved_at'][:19]})\n"
        )
    for run in report["runs"]:
        counts_text = " ".join(f"{k}={v}" for k, v in sorted(run["counts"].items()) if v)
        out.write(
            f"  run {run['run_id']}  {run['started_at'][:19]}  {run['trigger']:<8} {run['mode']:<11} "
            f"{run['status']:<14} api={run['api_calls']} {'(dry run) ' if run['dry_run'] else ''}"
            f"{counts_text}" + (f"  error: {run['error']}" if run["error"] else "") + "\n"
        )
    rejected = report.get("last_run_rejections")
    if rejected:
        title = f"rejected in run {rejected['run_id']}"
        for line in rejection_lines(rejected["first"], rejected["count"], SHOWN_REJECTIONS, title):
            out.write(line + "\n")


def snooze_lines(snoozes: Mapping[str, Any] | None) -> list[str]:
    """The `snoozed` lines of `status`: the count and the refused ones, then one line per shown snooze
    (deal, owner, until, who, reason); nothing when no deal is snoozed and no snooze was refused."""
    if not snoozes:
        return []
    count, refused = snoozes["snoozed"], snoozes[f"refused_last_{REFUSED_DAYS}_days"]
    if not count and not refused:
        return []
    refusals = f"{refused} {'snooze' if refused == 1 else 'snoozes'} refused in the last {REFUSED_DAYS} days"
    lines = [f"  snoozed       {count:,} {'deal' if count == 1 else 'deals'} now; {refusals}"]
    for item in snoozes["shown"]:
        deal = f"{item['name']} ({item['deal_id']})" if item["name"] else item["deal_id"]
        owner = item["owner"] or item["owner_id"] or "(no owner)"
        by = f" by {item['snoozed_by']}" if item["snoozed_by"] else ""
        reason = f": {item['reason']}" if item["reason"] else ""
        lines.append(f"    {deal}  owner {owner}  until {item['until'] or '?'}{by}{reason}")
    if snoozes["more"]:
        lines.append(f"    …and {snoozes['more']:,} more")
    return lines


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    names = [settings.connection(args.connection).name] if args.connection else list(settings.connections)
    store = StateStore.open(settings.state.database_url())
    try:
        for name in names:
            store.mark_abandoned(name, utc_now())
        reports = [connection_status(store, name, args.runs) for name in names]
    finally:
        store.close()
    if args.json:
        sys.stdout.write(json.dumps({"state": settings.state.display_url(), "connections": reports}) + "\n")
    else:
        if not reports:
            sys.stdout.write("no connection is configured\n")
        for report in reports:
            _print_status(report)
    return exit_codes.OK


def run_setup(args: argparse.Namespace, settings: Settings) -> int:
    """HubSpot: create the property group and output properties (idempotent). Salesforce: check fields and
    permissions (fields are deployed from config/salesforce/, see the README). A connection that cannot be
    set up (secret missing, credentials rejected, CRM unreachable) prints one PROBLEM line and the others
    go on; the exit code is the worst seen (3 for a configuration error, else 1)."""
    worker = Worker(settings)
    code = exit_codes.OK
    try:
        for name in [args.connection] if args.connection else list(settings.connections):
            try:
                problems = _setup_one(worker, name, args)
            except BantSyncError as exc:
                sys.stdout.write(f"{name}: PROBLEM: {exc.render()}\n")
                code = max(code, exc.exit_code if exc.exit_code == exit_codes.CONFIG else exit_codes.FAILURE)
                continue
            if problems:
                code = max(code, exit_codes.FAILURE)
            else:
                sys.stdout.write(f"{name}: ready\n")
    finally:
        worker.close()
    return code


def _setup_one(worker: Worker, name: str, args: argparse.Namespace) -> list[str]:
    """Set up (or with --check, only check) one connection; prints what it found, returns its problems."""
    connector = worker.connector(name)
    try:
        report = connector.setup(check_only=args.check, create_inputs=args.create_inputs)
    finally:
        connector.close()
    _print_lines(name, "created", report.created)
    if not args.quiet:
        _print_lines(name, "ok", report.ok)
        _print_lines(name, "note", report.notes)
    _print_lines(name, "PROBLEM", report.problems)
    return list(report.problems)


def _print_lines(name: str, label: str, items: Any) -> None:
    for item in items:
        sys.stdout.write(f"{name}: {label}: {item}\n")


def add_parsers(subparsers: Any, common: argparse.ArgumentParser) -> None:
    status = subparsers.add_parser(
        "status",
        parents=[common],
        help="last runs, cursor, lease holder and deals by status, per connection",
        description="Show what the state store knows: last runs, cursor, lease holder, deals by status.",
    )
    status.add_argument("--connection", metavar="NAME", help="one connection (default: all)")
    status.add_argument("--runs", type=int, default=5, metavar="N", help="how many recent runs (default 5)")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=run_status)
    setup = subparsers.add_parser(
        "setup",
        parents=[common],
        help="make the CRM ready: create HubSpot properties, check Salesforce fields and permissions",
        description=(
            "HubSpot: create bant-sync's property group, its output and snooze properties (a second run "
            "changes nothing), add status options a newer bant-sync writes, and check the BANT input ones "
            "(--create-inputs creates them with their types). Salesforce: check every mapped field "
            "exists and is readable/updatable and name the permission to grant (deploy the fields from "
            "config/salesforce/: docs/admin-guide.md). Exit 1 on problems."
        ),
    )
    setup.add_argument("--connection", metavar="NAME", help="one connection (default: all)")
    setup.add_argument("--check", action="store_true", help="only check, change nothing")
    setup.add_argument(
        "--create-inputs",
        action="store_true",
        help="HubSpot: also create the BANT input properties (budget, authority, need, timing) in the "
        "bant-sync group",
    )
    setup.add_argument("--quiet", action="store_true", help="print only what was created and the problems")
    setup.set_defaults(handler=run_setup)
