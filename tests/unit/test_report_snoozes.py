"""Snoozes in the outcome report: compliance counts snoozed deals apart (neither qualified nor unqualified),
the trend replays a snoozed verdict, follow-through keeps one flag through a snooze, and the page, JSON and
CSV carry the current, refused and ended snoozes."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.model import Owner
from worker.report.cohorts import compare, win_rate
from worker.report.compliance import audit_by_deal, by_owner, by_team, follow_through, trend
from worker.report.model import Compliance, Judged, Source
from worker.report.render import (
    CohortSection,
    OutcomeReport,
    render_html,
    report_json,
    summary_lines,
    trend_chart,
    write_report,
)
from worker.report.snoozes import from_history
from worker.state.model import AuditRow, DealState

CRITERIA = ("budget", "authority", "need", "timing")
T0 = datetime(2026, 10, 5, 12, tzinfo=UTC)  # a Monday
OWNERS = [Owner("u1", "Ana Rep", "ana@x.io", "m1", True), Owner("m1", "Mo Boss", "mo@x.io", None, True)]
REASON = "Waiting on the customer's budget cycle"
POC = "POCs cannot be snoozed — every criterion is required before a POC goes ahead"


class Log:
    def __init__(self) -> None:
        self.rows: list[AuditRow] = []

    def add(
        self,
        deal: str,
        status: str,
        at: datetime,
        missing: tuple[str, ...] = (),
        note: str | None = None,
        actor: str | None = None,
    ) -> None:
        old = next((r.new_status for r in reversed(self.rows) if r.deal_id == deal), None)
        self.rows.append(
            AuditRow(len(self.rows) + 1, "c", "run", deal, old, status, missing, at, "run", actor, note)
        )


def _state(deal: str, status: str, missing: tuple[str, ...] = (), until: date | None = None) -> DealState:
    return DealState(deal, "u1", status, missing, T0, None, f"Deal {deal}", until, None)


def test_compliance_counts_snoozed_deals_apart_from_qualified_and_unqualified() -> None:
    """Four open deals: one unqualified, one snoozed, two qualified; the shares add up to the whole and
    the snoozed deal still counts for the criterion it misses."""
    states = [
        _state("d1", "needs_qualification", ("budget",)),
        _state("d2", "snoozed", ("budget", "need"), date(2026, 10, 20)),
        _state("d3", "qualified"),
        _state("d4", "qualified"),
        _state("d5", "not_evaluated"),
    ]
    [row] = by_owner(states, OWNERS, CRITERIA)
    assert (row.open_deals, row.unqualified, row.snoozed, row.qualified) == (4, 1, 1, 2)
    assert (row.unqualified_share, row.snoozed_share, row.qualified_share) == (0.25, 0.25, 0.5)
    assert dict(row.missing) == {"budget": 2, "authority": 0, "need": 1, "timing": 0}
    [team] = by_team(states, OWNERS, CRITERIA)
    assert (team.group, team.snoozed, team.unqualified) == ("team of Mo Boss", 1, 1)


def test_the_trend_replays_a_snooze_as_neither_qualified_nor_unqualified() -> None:
    """d1 is flagged in week 1, snoozed in week 2, flagged again in week 3: each week's end counts it in
    the open deals, and as unqualified, snoozed, unqualified; what it misses counts every week."""
    log = Log()
    log.add("d1", "needs_qualification", T0, ("budget",))
    log.add("d1", "snoozed", T0 + timedelta(days=7), ("budget",), f"Snoozed until 2026-10-17: {REASON}")
    log.add("d1", "needs_qualification", T0 + timedelta(days=14), ("budget",), "Snooze ended on 2026-10-17")
    log.add("d2", "qualified", T0)
    points = trend(audit_by_deal(log.rows), ["d1", "d2"], [], CRITERIA, date(2026, 10, 5), date(2026, 10, 25))
    assert [(p.open_deals, p.unqualified, p.snoozed, dict(p.missing)["budget"]) for p in points] == [
        (2, 1, 0, 1),
        (2, 0, 1, 1),
        (2, 1, 0, 1),
    ]
    compliance = Compliance(tuple((c, c.title()) for c in CRITERIA), (), (), tuple(points), None)
    assert trend_chart(compliance) is not None


def test_a_snooze_does_not_end_the_flag_in_follow_through() -> None:
    """Flagged, snoozed, flagged again, then qualified: one flag, qualified after 20 days. A deal that
    closed while snoozed closed while flagged."""
    log = Log()
    log.add("d1", "needs_qualification", T0)
    log.add("d1", "snoozed", T0 + timedelta(days=5))
    log.add("d1", "needs_qualification", T0 + timedelta(days=15))
    log.add("d1", "qualified", T0 + timedelta(days=20))
    log.add("d2", "poc_unqualified", T0)
    log.add("d2", "snoozed", T0 + timedelta(days=2))
    closed = [Judged("d2", "d2", "u1", False, False, True, date(2026, 10, 20), Source.HISTORY)]
    result = follow_through(audit_by_deal(log.rows), closed, ["d1"], date(2026, 10, 1), date(2026, 10, 31))
    assert (result.flagged, result.qualified_later, result.median_days) == (2, 1, pytest.approx(20.0))
    assert (result.closed_while_flagged_won, result.closed_while_flagged_lost) == (1, 0)


def _snooze_log() -> tuple[Log, list[DealState]]:
    log = Log()
    log.add("d1", "needs_qualification", T0, ("budget",))
    log.add("d1", "snoozed", T0 + timedelta(days=1), ("budget",), "Snoozed until 2026-10-10: old words", "u1")
    log.add("d1", "snoozed", T0 + timedelta(days=2), ("budget",), f"Snoozed until 2026-10-30: {REASON}", "m1")
    log.add("d2", "poc_unqualified", T0, ("need",))
    log.add("d2", "poc_unqualified", T0 + timedelta(days=3), ("need",), f"Snooze ignored: {POC}", "u1")
    log.add("d3", "needs_qualification", T0 - timedelta(days=40), ("timing",))
    log.add("d3", "snoozed", T0 - timedelta(days=30), ("timing",), "Snoozed until 2026-10-06: later <b>")
    log.add("d3", "needs_qualification", T0 + timedelta(days=2), ("timing",), "Snooze ended on 2026-10-06")
    log.add("d4", "snoozed", T0 - timedelta(days=30), (), "Snoozed until 2026-09-20: before the window")
    log.add("d4", "qualified", T0 - timedelta(days=10), (), "Snooze ended on 2026-09-20")
    states = [
        _state("d1", "snoozed", ("budget",), date(2026, 10, 30)),
        _state("d2", "poc_unqualified", ("need",)),
        _state("d3", "needs_qualification", ("timing",)),
    ]
    return log, states


def test_the_report_reads_current_refused_and_ended_snoozes_from_the_audit_log() -> None:
    log, states = _snooze_log()
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    found = from_history(audit_by_deal(log.rows), states, OWNERS, start, end)
    assert [(s.deal_id, s.until, s.by, s.reason, s.owner) for s in found.current] == [
        ("d1", date(2026, 10, 30), "Mo Boss", REASON, "Ana Rep")
    ]
    assert [(e.deal_id, e.by, e.why) for e in found.refused] == [("d2", "Ana Rep", POC)]
    assert found.refused_by_why() == [(POC, 1)]
    assert [(e.deal_id, e.status) for e in found.ended] == [("d3", "needs_qualification")]


def _report() -> OutcomeReport:
    log, states = _snooze_log()
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    pocs = CohortSection(
        "pocs",
        "POCs",
        compare(win_rate("qualified at entry", 16, 4), win_rate("unqualified at entry", 3, 62)),
        "field history",
    )
    history = audit_by_deal(log.rows)
    compliance = Compliance(
        criteria=tuple((c, c.title()) for c in CRITERIA),
        by_owner=tuple(by_owner(states, OWNERS, CRITERIA)),
        by_team=(),
        trend=tuple(trend(history, ["d1", "d2", "d3"], [], CRITERIA, start.date(), end.date())),
        follow_through=None,
        snoozes=from_history(history, states, OWNERS, start, end),
    )
    return OutcomeReport("hubspot", start.date(), end.date(), "bant", (pocs,), compliance)


def test_the_page_json_and_csv_carry_the_snoozes(tmp_path: Path) -> None:
    report = _report()
    page = render_html(report, {"pocs-win-rates": b"png"})
    assert '<section id="snoozes">' in page and "<th>snoozed</th>" in page
    assert "deals snoozed now</td><td>1<" in page and REASON.replace("'", "&#39;") in page
    assert "POCs cannot be snoozed" in page and "Snoozes that ended with the deal flagged again" in page
    assert "neither qualified nor unqualified" in page
    body = report_json(report)
    owner = body["compliance"]["by_owner"][0]
    assert (owner["snoozed"], owner["snoozed_share"], owner["unqualified"]) == (1, pytest.approx(1 / 3), 2)
    snoozes = body["compliance"]["snoozes"]
    assert (snoozes["current"], snoozes["refused"], snoozes["ended_reflagged"]) == (1, 1, 1)
    assert snoozes["current_snoozes"][0]["snoozed_by"] == "Mo Boss"
    assert snoozes["refused_by_why"] == [{"why": POC, "count": 1}]
    assert [p["snoozed"] for p in body["compliance"]["trend"]] == [1, 1, 1, 1, 1]
    json.dumps(body)
    assert any("1 deal(s) snoozed now" in line for line in summary_lines(report))
    files = write_report(report, tmp_path / "out")
    with (files.html.parent / "snoozes.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["deal_id"], r["reason"]) for r in rows] == [
        ("current", "d1", REASON),
        ("refused", "d2", POC),
        ("ended", "d3", ""),
    ]
    with (files.html.parent / "compliance.csv").open(encoding="utf-8") as handle:
        assert next(csv.DictReader(handle))["snoozed"] == "1"


def test_the_page_escapes_snooze_reasons() -> None:
    """A reason is what a rep typed in the CRM: the page shows it as text."""
    report = _report()
    assert report.compliance is not None
    log, states = _snooze_log()
    log.add("d1", "snoozed", T0 + timedelta(days=4), ("budget",), "Snoozed until 2026-10-30: <img src=x>")
    start, end = datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    hostile = from_history(audit_by_deal(log.rows), states, OWNERS, start, end)
    assert report.compliance is not None
    compliance = Compliance(report.compliance.criteria, report.compliance.by_owner, (), (), None, hostile)
    page = render_html(
        OutcomeReport("hubspot", start.date(), end.date(), "bant", report.sections, compliance),
        {"pocs-win-rates": b"png"},
    )
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page
