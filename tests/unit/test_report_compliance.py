"""Compliance by owner and team, its weekly trend from the audit log, and what flags led to (pure code)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from connectors.model import Owner
from worker.report.compliance import (
    NO_MANAGER,
    audit_by_deal,
    by_owner,
    by_team,
    follow_through,
    status_at,
    trend,
    week_ends,
)
from worker.report.model import Judged, Source
from worker.state.model import AuditRow, DealState

CRITERIA = ("budget", "authority", "need", "timing")
T0 = datetime(2026, 10, 5, 12, tzinfo=UTC)  # a Monday
OWNERS = [
    Owner("u1", "Ana Rep", "ana@example.com", "m1", True),
    Owner("u2", "Bo Rep", "bo@example.com", "m1", True),
    Owner("u3", "Cy Rep", None, None, True),
    Owner("m1", "Mo Manager", "mo@example.com", None, True),
]


def _state(deal: str, owner: str | None, status: str, missing: tuple[str, ...] = ()) -> DealState:
    return DealState(deal, owner, status, missing, T0)


class Log:
    def __init__(self) -> None:
        self.rows: list[AuditRow] = []

    def add(self, deal: str, status: str, at: datetime, missing: tuple[str, ...] = ()) -> None:
        old = next((r.new_status for r in reversed(self.rows) if r.deal_id == deal), None)
        self.rows.append(AuditRow(len(self.rows) + 1, "c", "run", deal, old, status, missing, at))


def test_by_owner_names_owners_and_counts_each_missing_criterion() -> None:
    states = [
        _state("d1", "u1", "needs_qualification", ("budget", "timing")),
        _state("d2", "u1", "qualified"),
        _state("d3", "u2", "poc_unqualified", ("budget",)),
        _state("d4", "u9", "qualified"),
        _state("d5", "u1", "not_evaluated"),
    ]
    rows = by_owner(states, OWNERS, CRITERIA)
    assert [(r.group, r.open_deals, r.unqualified) for r in rows] == [
        ("Bo Rep", 1, 1),
        ("Ana Rep", 2, 1),
        ("u9", 1, 0),
    ]
    ana = rows[1]
    assert ana.email == "ana@example.com"
    assert ana.share("budget") == 0.5 and ana.share("timing") == 0.5 and ana.share("need") == 0.0


def test_by_team_rolls_reports_up_to_their_manager() -> None:
    states = [
        _state("d1", "u1", "needs_qualification", ("budget",)),
        _state("d2", "u2", "qualified"),
        _state("d3", "u3", "qualified"),
    ]
    rows = by_team(states, OWNERS, CRITERIA)
    assert [(r.group, r.open_deals, r.unqualified) for r in rows] == [
        ("team of Mo Manager", 2, 1),
        (NO_MANAGER, 1, 0),
    ]


def test_configured_teams_roll_up_by_member_e_mail_where_the_crm_has_no_managers() -> None:
    """HubSpot has no ManagerId: [[digest.teams]] names the teams, by their members' e-mails."""
    owners = [Owner(o.id, o.name, o.email, None, True) for o in OWNERS]
    states = [
        _state("d1", "u1", "needs_qualification", ("budget",)),
        _state("d2", "u2", "qualified"),
        _state("d3", "u3", "qualified"),
    ]
    rows = by_team(states, owners, CRITERIA, [("West", ("ANA@example.com", "bo@example.com"))])
    assert [(r.group, r.open_deals, r.unqualified) for r in rows] == [("West", 2, 1)]


def test_week_ends_are_sundays_and_the_last_day() -> None:
    assert week_ends(date(2026, 10, 5), date(2026, 10, 21)) == [
        date(2026, 10, 11),
        date(2026, 10, 18),
        date(2026, 10, 21),
    ]
    assert week_ends(date(2026, 10, 5), date(2026, 10, 6)) == [date(2026, 10, 6)]


def _closed(deal: str, won: bool, on: date) -> Judged:
    return Judged(deal, deal, "u1", True, True, won, on, Source.HISTORY)


def test_the_trend_replays_verdicts_and_drops_deals_once_they_closed() -> None:
    log = Log()
    log.add("d1", "needs_qualification", T0, ("budget",))
    log.add("d2", "qualified", T0)
    log.add("d1", "qualified", T0 + timedelta(days=8))
    log.add("d3", "poc_unqualified", T0 + timedelta(days=9), ("need",))
    log.add("gone", "needs_qualification", T0, ("budget",))  # deleted: neither open now nor closed
    closed = [_closed("d2", True, date(2026, 10, 14))]
    points = trend(
        audit_by_deal(log.rows), ["d1", "d3"], closed, CRITERIA, date(2026, 10, 5), date(2026, 10, 21)
    )
    assert [(p.week_ending, p.open_deals, p.unqualified, dict(p.missing)["budget"]) for p in points] == [
        (date(2026, 10, 11), 2, 1, 1),
        (date(2026, 10, 18), 2, 1, 0),
        (date(2026, 10, 21), 2, 1, 0),
    ]
    assert dict(points[1].missing)["need"] == 1


def test_follow_through_measures_days_to_qualify_and_what_became_of_flags() -> None:
    log = Log()
    log.add("d1", "needs_qualification", T0)
    log.add("d1", "qualified", T0 + timedelta(days=4))
    log.add("d2", "poc_unqualified", T0)
    log.add("d2", "qualified", T0 + timedelta(days=10))
    log.add("d3", "poc_unqualified", T0)  # closed lost while flagged
    log.add("d4", "qualify_out", T0 + timedelta(days=1))  # still open
    log.add("d5", "needs_qualification", T0 - timedelta(days=60))  # flagged before the period
    log.add("d6", "qualify_out", T0)
    closed = [_closed("d3", False, date(2026, 10, 20)), _closed("d6", True, date(2026, 10, 20))]
    result = follow_through(
        audit_by_deal(log.rows), closed, ["d1", "d2", "d4", "d5"], date(2026, 10, 1), date(2026, 10, 31)
    )
    assert result.flagged == 5 and result.qualified_later == 2
    assert result.median_days == pytest.approx(7.0)
    assert result.p90_days == pytest.approx(9.4)
    assert (result.closed_while_flagged_won, result.closed_while_flagged_lost) == (1, 1)
    assert (result.qualify_out, result.qualify_out_won, result.qualify_out_lost, result.qualify_out_open) == (
        2,
        1,
        0,
        1,
    )


def test_status_at_takes_the_last_verdict_not_after_the_moment() -> None:
    log = Log()
    log.add("d1", "poc_unqualified", T0)
    log.add("d1", "qualified", T0 + timedelta(days=3))
    log.add("d2", "qualified", T0 + timedelta(days=3))
    found = status_at(audit_by_deal(log.rows), {"d1": T0 + timedelta(days=1), "d2": T0, "d9": T0})
    assert found == {"d1": "poc_unqualified"}
