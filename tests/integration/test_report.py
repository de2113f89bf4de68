"""`bant-sync report` on both CRMs, through the whole pipeline: the seed's closed history judged at POC start,
compliance with owners' names, a trend over weeks of rep edits, and the fallbacks people cause (an admin
turns history tracking off, a data migration leaves values without history)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Env, cli
from worker import exit_codes
from worker.report.build import ReportRequest, report_on
from worker.report.model import OutcomeReport, Source

BUDGET = {"salesforce": "BANT_Budget__c", "hubspot": "bant_budget"}


def report_json(env: Env, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = cli(env, capsys, "report", "--connection", env.crm, *args)
    assert code == exit_codes.OK, err
    body: dict[str, Any] = json.loads(out)
    return body


def cohort(body: dict[str, Any], section: str, name: str) -> tuple[int, int, str]:
    row = next(r for r in body["cohorts"] if r["section"] == section and r["cohort"] == name)
    return row["closed"], row["won"], row["source"]


def build(env: Env, days: int = 365) -> OutcomeReport:
    today = env.today()
    return report_on(env.worker, ReportRequest(env.crm, today - timedelta(days=days), today, "bant"))


def test_the_json_report_gives_the_seeds_cohorts_and_names_the_owners(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Judged when each POC started: 65 unqualified of which 3 won, 20 qualified of which 16 won, from field
    history, within the history read's call budget; compliance lists every rep by name."""
    assert env.run("full").status == "succeeded"
    env.sb.reset_requests()
    body = report_json(env, capsys, "--format", "json", "--output", str(tmp_path / "out"))
    assert cohort(body, "pocs", "unqualified at entry") == (65, 3, "field history")
    assert cohort(body, "pocs", "qualified at entry") == (20, 16, "field history")
    assert body["closed_deals"] == 85 and body["notes"] == []
    assert body["api_calls"] <= 8, body["api_calls"]
    owners = {row["group"] for row in body["compliance"]["by_owner"]}
    names = {o.name for o in env.worker.store.owners(env.crm)}
    assert owners and owners <= names
    assert sum(row["open_deals"] for row in body["compliance"]["by_owner"]) == 133
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"report.html", "report.json", "cohorts.csv", "compliance.csv", "pocs-win-rates.png"} <= files
    assert (
        json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))["cohorts"]
        == body["cohorts"]
    )


def test_without_field_history_the_values_at_close_stand_in_and_every_output_says_so(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin turned off history tracking for Budget (Salesforce), or a migration left Budget values with
    no history (HubSpot): Budgets filled in during a POC now count at entry, the cohorts move, and the JSON
    labels them and says what to do."""
    closed = [deal_id for deal_id, d in env.view.deals().items() if not d["open"]]
    assert len(closed) == 85
    if env.crm == "salesforce":
        env.sb.salesforce.set_history_tracking("Opportunity", BUDGET["salesforce"], False)
    else:
        for deal in closed:
            env.sb.hubspot.forget_history("deals", deal, BUDGET["hubspot"])
    body = report_json(env, capsys, "--format", "json")
    closed_n, _, source = cohort(body, "pocs", "unqualified at entry")
    assert Source.AT_CLOSE.value in source  # HubSpot: a Budget never set has no history to lack
    assert closed_n != 65  # Budgets filled in during a POC, and the four cleared before close, now count
    assert any("history tracking" in note for note in body["notes"])


def test_an_edit_after_the_deal_closed_does_not_change_its_verdict_at_entry(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rep tidies up a lost POC's Budget after the fact: the report still judges it as it started."""
    before = report_json(env, capsys, "--format", "json")
    lost = next(
        deal_id
        for deal_id, d in env.view.deals().items()
        if not d["open"] and env.view.deal_field(deal_id, "stage") in {"Closed Lost", "closedlost"}
    )
    env.view.set_deal_field(lost, "budget", "$90k approved in FY27 Sales budget")
    after = report_json(env, capsys, "--format", "json")
    assert after["cohorts"] == before["cohorts"]


def test_weeks_of_rep_edits_make_a_trend_and_a_time_to_qualify(env: Env) -> None:
    """Three weeks: each week reps fill in BANT on a few flagged deals and a sync runs. The trend's
    unqualified share falls week by week, and the report measures the days from flag to qualified."""
    assert env.run("full").status == "succeeded"
    flagged = sorted(_unqualified(env))
    for week in range(3):
        env.advance_days(7)
        for deal_id in flagged[week * 5 : week * 5 + 5]:
            env.view.fix_bant(deal_id)
        assert env.run("incremental").status == "succeeded"
    report = build(env, days=30)
    assert report.compliance is not None
    points = [p for p in report.compliance.trend if p.open_deals]
    shares = [p.unqualified / p.open_deals for p in points]
    assert len(points) >= 3 and shares[-1] < shares[0]
    follow = report.compliance.follow_through
    assert follow is not None and follow.qualified_later == 15
    assert follow.median_days == pytest.approx(14, abs=0.1)


def _unqualified(env: Env) -> set[str]:
    states = env.worker.store.current_states(env.crm)
    return {s.deal_id for s in states if s.status not in {"qualified", "not_evaluated"}}


def test_report_argument_mistakes_are_one_message_and_exit_2(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(
        env, capsys, "report", "--connection", env.crm, "--since", "2026-06-01", "--until", "2026-01-01"
    )
    assert code == exit_codes.USAGE and "--since 2026-06-01 is after --until 2026-01-01" in err
    code, _, err = cli(env, capsys, "report", "--connection", "nope")
    assert code == exit_codes.USAGE
    assert "no connection named 'nope'" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exited:
        cli(env, capsys, "report", "--connection", env.crm, "--since", "last year")
    assert exited.value.code == exit_codes.USAGE


def test_the_report_window_is_by_close_date(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Only deals closed within --since/--until count: the seed's closes spread over 15 to 350 days ago."""
    today = datetime.now().date()
    recent = report_json(env, capsys, "--format", "json", "--since", str(today - timedelta(days=100)))
    assert 0 < recent["closed_deals"] < 85


ENTRY_STAGES = {
    "salesforce": ("Value Proposition", "Perception Analysis"),
    "hubspot": ("presentationscheduled", "decisionmakerboughtin"),
}


def test_an_entry_stage_judges_deals_when_they_reached_it(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's closed POCs all reached Value Proposition a third of the way in; some had BANT filled in by
    then, so fewer count as unqualified than at creation. All skipped Perception Analysis (they moved on to
    Proposal/Price Quote): no cohort at all, and the notes say why."""
    reached, skipped = ENTRY_STAGES[env.crm]
    body = report_json(env, capsys, "--format", "json", "--entry-stage", reached)
    unqualified, _, _ = cohort(body, "pocs", "unqualified at entry")
    qualified, _, _ = cohort(body, "pocs", "qualified at entry")
    assert body["not_entered"] == 0 and unqualified + qualified == 85
    assert 51 <= unqualified < 65
    never = report_json(env, capsys, "--format", "json", "--entry-stage", skipped)
    assert never["not_entered"] == 85
    assert cohort(never, "pocs", "qualified at entry")[0] == 0
    assert any(f"never entered the stage {skipped!r}" in note for note in never["notes"])


def test_a_misspelt_entry_stage_is_named_on_stderr_whatever_the_format(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin types the stage's label where HubSpot wants its id (or misspells it): no deal entered it,
    so the cohorts are empty, and the note saying to check the spelling reaches stderr even as CSV."""
    code, out, err = cli(
        env, capsys, "report", "--connection", env.crm, "--format", "csv", "--entry-stage", "Qualifed"
    )
    assert code == exit_codes.OK
    assert out.splitlines()[1].startswith("pocs,qualified at entry,0,")
    assert "never entered the stage 'Qualifed'" in err and "check the stage's spelling" in err


SNOOZE_REASON = "Customer budget cycle opens on 1 January"


def _flagged_with_task(env: Env, status: str) -> str:
    return next(
        deal_id
        for deal_id, deal in sorted(env.view.deals().items())
        if deal["open"] and deal["status"] == status and len(env.view.open_tasks_of(deal_id)) == 1
    )


def test_a_snooze_shows_in_status_and_the_report_and_its_end_in_the_next_report(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Another rep snoozes a flagged deal and tries to snooze a POC: `status` (text and JSON) counts the
    snoozed deal and names it with its owner, date, who snoozed it and why, and counts the refusal; the
    report counts it as snoozed (neither qualified nor unqualified) and lists the refusal with its reason.
    When the snooze ends the deal is flagged again, and the report says so."""
    assert env.run("full").status == "succeeded"
    deal_id = _flagged_with_task(env, "needs_qualification")
    poc_id = _flagged_with_task(env, "poc_unqualified")
    owner = str(env.view.deal_field(deal_id, "owner"))
    rep = next(r for r in env.view.owners() if r != owner)
    until = env.today() + timedelta(days=14)
    env.view.snooze(deal_id, until, SNOOZE_REASON, by=rep)
    env.view.snooze(poc_id, until, SNOOZE_REASON, by=rep)
    assert env.run().status == "succeeded"
    names = {o.id: o.name for o in env.worker.store.owners(env.crm)}
    who = names[rep]  # HubSpot names the modifier by its user id; the owners cache maps it to the owner

    code, out, err = cli(env, capsys, "status", "--connection", env.crm, "--json")
    assert code == exit_codes.OK, err
    [status] = json.loads(out)["connections"]
    assert status["deals_by_status"]["snoozed"] == 1
    snoozes = status["snoozes"]
    assert (snoozes["snoozed"], snoozes["more"], snoozes["refused_last_7_days"]) == (1, 0, 1)
    [shown] = snoozes["shown"]
    assert (shown["deal_id"], shown["owner"], shown["until"], shown["snoozed_by"], shown["reason"]) == (
        deal_id,
        names[owner],
        until.isoformat(),
        who,
        SNOOZE_REASON,
    )
    code, text, _err = cli(env, capsys, "status", "--connection", env.crm)
    assert "  snoozed       1 deal now; 1 snooze refused in the last 7 days" in text
    assert f"({deal_id})  owner {names[owner]}  until {until.isoformat()} by {who}: {SNOOZE_REASON}" in text

    out_dir = tmp_path / "report"
    body = report_json(env, capsys, "--format", "json", "--output", str(out_dir))
    compliance = body["compliance"]
    assert sum(row["snoozed"] for row in compliance["by_owner"]) == 1
    row = next(r for r in compliance["by_owner"] if r["group"] == names[owner])
    assert row["snoozed_share"] == pytest.approx(1 / row["open_deals"])
    assert (compliance["snoozes"]["current"], compliance["snoozes"]["refused"]) == (1, 1)
    [refused] = compliance["snoozes"]["refused_snoozes"]
    assert refused["deal_id"] == poc_id and refused["why"].startswith("POCs cannot be snoozed")
    page = (out_dir / "report.html").read_text(encoding="utf-8")
    assert '<section id="snoozes">' in page and SNOOZE_REASON in page and "POCs cannot be snoozed" in page
    assert "snoozed" in (out_dir / "compliance.csv").read_text(encoding="utf-8").splitlines()[0]
    assert deal_id in (out_dir / "snoozes.csv").read_text(encoding="utf-8")

    env.advance_days(15)
    assert env.run().status == "succeeded"
    report = build(env, days=30)
    assert report.compliance is not None and report.compliance.snoozes is not None
    ended = report.compliance.snoozes
    assert ended.current == () and [e.deal_id for e in ended.ended] == [deal_id]
    assert sum(r.snoozed for r in report.compliance.by_owner) == 0
    assert [p.snoozed for p in report.compliance.trend if p.open_deals][-1] == 0
    assert max(p.snoozed for p in report.compliance.trend) == 1
