"""How well the open pipeline is qualified, who it rests with, how it moves, and what flags lead to. Pure.

- **Compliance**: of each owner's (and each team's) open deals, the share missing each criterion, from the
  latest verdicts bant-sync holds (`deal_states`). A team is a manager and the people who report to them
  (Salesforce `User.ManagerId`); owners without a manager make up "no manager".
- **Trend**: the same shares week by week, replayed from the audit log. The audit log records every change
  of verdict, so a deal's verdict at a week's end is the last one logged before it. Which deals were open
  then is known without guessing: those still open now (they have a current verdict) and those that closed
  after that week (the closed deals read for the report); a deal that closed before the period, or was
  deleted, drops out.
- **Follow-through**: after a deal is flagged, how many days until it is qualified; which deals reached
  `qualify_out`; and what became of both (won, lost, still open).

Snoozed deals (status `snoozed`: a rep acknowledged the flag with a reason and an end date) are open deals
that are neither qualified nor unqualified: they have their own count and share, and they count for each
criterion they miss (a snooze fills no gap). In the trend a week's end whose last verdict is `snoozed`
counts the same way. In follow-through a snooze does not end the flag: a deal flagged, snoozed and flagged
again is one flag (its stretch runs through the snooze, as the qualify-out clock does), qualified only when
it becomes `qualified`, and a deal that closed while snoozed closed while flagged.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta

from connectors.model import Owner
from rules import Status
from worker.report.model import ComplianceRow, FollowThrough, Judged, TrendPoint
from worker.state.model import AuditRow, DealState

NO_MANAGER = "no manager"
UNKNOWN_OWNER = "no owner"
_UNQUALIFIED = frozenset(status for status in Status if status.is_unqualified)
_FLAGGED = frozenset(status for status in Status if status.is_flagged)
"""Unqualified or snoozed: a flag stretch (follow-through), and a deal that misses criteria."""


def _name(owners: Mapping[str, Owner], owner_id: str | None) -> tuple[str, str | None]:
    if owner_id is None:
        return UNKNOWN_OWNER, None
    owner = owners.get(owner_id)
    return (owner.name, owner.email) if owner else (owner_id, None)


def _row(
    group: str, email: str | None, states: Sequence[DealState], criteria: Sequence[str]
) -> ComplianceRow:
    counts = dict.fromkeys(criteria, 0)
    unqualified = snoozed = 0
    for state in states:
        if state.status in _UNQUALIFIED:
            unqualified += 1
        elif state.status == Status.SNOOZED:
            snoozed += 1
        for criterion in state.missing:
            if criterion in counts:
                counts[criterion] += 1
    return ComplianceRow(group, email, len(states), unqualified, tuple(counts.items()), snoozed)


def _judged(states: Iterable[DealState]) -> list[DealState]:
    return [s for s in states if s.status != Status.NOT_EVALUATED]


def by_owner(
    states: Iterable[DealState], owners: Sequence[Owner], criteria: Sequence[str]
) -> list[ComplianceRow]:
    """One row per owner of open deals, the least compliant (highest unqualified share) first."""
    index = {o.id: o for o in owners}
    grouped: dict[str | None, list[DealState]] = defaultdict(list)
    for state in _judged(states):
        grouped[state.owner_id].append(state)
    rows = [_row(*_name(index, owner_id), group, criteria) for owner_id, group in grouped.items()]
    return sorted(rows, key=lambda r: (-(r.unqualified_share or 0.0), r.group))


def by_team(
    states: Iterable[DealState],
    owners: Sequence[Owner],
    criteria: Sequence[str],
    teams: Sequence[tuple[str, Sequence[str]]] = (),
) -> list[ComplianceRow]:
    """One row per manager's team (their direct reports' open deals; the manager's name heads the row),
    when the CRM has managers, and one per configured team (`[[digest.teams]]`: a name and its members'
    e-mails, matched without regard to case). Owners in neither make up "no manager"."""
    judged = _judged(states)
    index = {o.id: o for o in owners}
    rows = []
    if any(o.manager_id for o in owners) or not teams:
        grouped: dict[str | None, list[DealState]] = defaultdict(list)
        for state in judged:
            owner = index.get(state.owner_id or "")
            grouped[owner.manager_id if owner else None].append(state)
        for manager_id, group in grouped.items():
            name, email = _name(index, manager_id) if manager_id else (NO_MANAGER, None)
            rows.append(_row(f"team of {name}" if manager_id else name, email, group, criteria))
    for team, members in teams:
        emails = {m.lower() for m in members}
        ids = {o.id for o in owners if o.email and o.email.lower() in emails}
        rows.append(_row(team, None, [s for s in judged if s.owner_id in ids], criteria))
    return sorted(rows, key=lambda r: (-(r.unqualified_share or 0.0), r.group))


def week_ends(since: date, until: date) -> list[date]:
    """Every Sunday from the first on or after `since` up to `until`, and `until` itself if it is not one."""
    first = since + timedelta(days=(6 - since.weekday()) % 7)
    weeks = (until - first).days // 7 + 1 if first <= until else 0
    days = [first + timedelta(weeks=n) for n in range(weeks)]
    if not days or days[-1] != until:
        days.append(until)
    return days


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time.max, UTC)


def trend(
    history: Mapping[str, Sequence[AuditRow]],
    open_now: Iterable[str],
    closed: Iterable[Judged],
    criteria: Sequence[str],
    since: date,
    until: date,
) -> list[TrendPoint]:
    """The open pipeline's qualification at the end of each week of [since, until] (see the module doc);
    `history` is the audit log by deal (`audit_by_deal`)."""
    still_open = set(open_now)
    closed_on = {j.deal_id: j.closed_on for j in closed}
    stamps = {deal: [r.at for r in rows] for deal, rows in history.items()}
    points = []
    for week_end in week_ends(since, until):
        moment = _end_of(week_end)
        counts = dict.fromkeys(criteria, 0)
        open_deals = unqualified = snoozed = 0
        for deal_id, rows in history.items():
            if deal_id not in still_open and closed_on.get(deal_id, date.min) <= week_end:
                continue
            position = bisect_right(stamps[deal_id], moment)
            if position == 0:
                continue
            latest = rows[position - 1]
            if latest.new_status == Status.NOT_EVALUATED:
                continue
            open_deals += 1
            if latest.new_status in _UNQUALIFIED:
                unqualified += 1
            elif latest.new_status == Status.SNOOZED:
                snoozed += 1
            if latest.new_status in _FLAGGED:
                for criterion in latest.missing:
                    if criterion in counts:
                        counts[criterion] += 1
        points.append(TrendPoint(week_end, open_deals, unqualified, tuple(counts.items()), snoozed))
    return points


def follow_through(
    history: Mapping[str, Sequence[AuditRow]],
    closed: Iterable[Judged],
    open_now: Iterable[str],
    since: date,
    until: date,
) -> FollowThrough:
    """Flags raised in [since, until] and what came of them; qualify_out deals and their outcome.
    `history` is the audit log by deal (`audit_by_deal`)."""
    start, end = datetime.combine(since, time.min, UTC), _end_of(until)
    outcome = {j.deal_id: j.won for j in closed}
    still_open = set(open_now)
    days: list[float] = []
    flagged = won_flagged = lost_flagged = 0
    out_won = out_lost = out_open = out_total = 0
    for deal_id, rows in history.items():
        flagged_at: datetime | None = None
        previous_in_flag = False
        reached_out = False
        for row in rows:
            in_flag = row.new_status in _FLAGGED  # a snooze does not end the flag's stretch
            if row.new_status == Status.QUALIFY_OUT and start <= row.at <= end:
                reached_out = True
            if in_flag and not previous_in_flag and start <= row.at <= end:
                flagged += 1
                flagged_at = row.at
            elif row.new_status == Status.QUALIFIED and flagged_at is not None:
                days.append((row.at - flagged_at).total_seconds() / 86_400)
                flagged_at = None
            previous_in_flag = in_flag
        if previous_in_flag and flagged_at is not None and deal_id in outcome:
            won_flagged += outcome[deal_id]
            lost_flagged += not outcome[deal_id]
        if reached_out:
            out_total += 1
            if deal_id in outcome:
                out_won += outcome[deal_id]
                out_lost += not outcome[deal_id]
            elif deal_id in still_open:
                out_open += 1
    return FollowThrough(
        flagged=flagged,
        qualified_later=len(days),
        median_days=statistics.median(days) if days else None,
        p90_days=_p90(days),
        closed_while_flagged_won=won_flagged,
        closed_while_flagged_lost=lost_flagged,
        qualify_out=out_total,
        qualify_out_won=out_won,
        qualify_out_lost=out_lost,
        qualify_out_open=out_open,
    )


def _p90(days: Sequence[float]) -> float | None:
    if len(days) < 2:
        return days[0] if days else None
    return statistics.quantiles(days, n=10, method="inclusive")[-1]


def audit_by_deal(audit: Iterable[AuditRow]) -> dict[str, list[AuditRow]]:
    """The audit rows of each deal, oldest first (by `seq`)."""
    history: dict[str, list[AuditRow]] = defaultdict(list)
    for row in sorted(audit, key=lambda r: r.seq):
        history[row.deal_id].append(row)
    return history


def status_at(history: Mapping[str, Sequence[AuditRow]], moments: Mapping[str, datetime]) -> dict[str, str]:
    """For each deal in `moments`, the status bant-sync had recorded for it at or before that moment (the
    last of its rows in `history` (see `audit_by_deal`) not after it); deals with none are absent. Looks
    at those deals' rows only, so judging closed deals batch by batch never re-reads the whole log."""
    found: dict[str, str] = {}
    for deal_id, moment in moments.items():
        earlier = [row for row in history.get(deal_id, ()) if row.at <= moment]
        if earlier:
            found[deal_id] = earlier[-1].new_status
    return found
