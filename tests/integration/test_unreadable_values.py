"""One malformed value never stops a connection: the deal holding it is quarantined — reported as a rejection
naming the field, not judged, nothing written, its task left alone — and the run goes on (issue 12, item 3).

Values real APIs let through a person, an import or an integration: HubSpot keeps any text in a property a
UI shows as a number, and JSON carries `NaN` and numbers too large for an integer or a date.
"""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Env
from tests.log_sink import Sink

BAD_SCORE: dict[str, Any] = {"hubspot": "Infinity", "salesforce": float("nan")}
SCORE_FIELD = {"hubspot": "bant_score", "salesforce": "BANT_Score__c"}


def _set_raw(env: Env, deal_id: str, field: str, value: Any) -> None:
    """Write a raw CRM value, past the people API (which speaks CRM-neutral values)."""
    if env.crm == "salesforce":
        env.sb.salesforce.update("Opportunity", deal_id, {field: value})
    else:
        env.sb.hubspot.update_deal(deal_id, {field: value})


def _open_unqualified_with_task(env: Env) -> str:
    deals = env.view.deals()
    return next(
        i for i, d in deals.items() if d["open"] and d["status"] != "qualified" and env.view.open_tasks_of(i)
    )


def test_a_bad_value_quarantines_its_deal_and_the_run_goes_on(env: Env, sink: Sink) -> None:
    first = env.run("full")
    assert first.status == "succeeded", first.error
    bad = _open_unqualified_with_task(env)
    task_before = env.view.open_tasks_of(bad)
    _set_raw(env, bad, SCORE_FIELD[env.crm], BAD_SCORE[env.crm])
    writes_before = env.writes()
    for mode in ("incremental", "full"):
        sink.lines.clear()
        summary = env.run(mode)
        assert summary.status == "succeeded", (mode, summary.error)
        assert summary.deals["unreadable"] == 1, mode
        [rejection] = [r for r in summary.rejections if r["operation"] == "read"]
        assert rejection["deal_id"] == bad and rejection["code"] == "UNREADABLE_VALUE"
        assert f"{SCORE_FIELD[env.crm]} (score)" in str(rejection["message"])
        assert "fix the value on the deal" in str(rejection["message"])
        stored = env.worker.store.run_rejections(summary.run_id)
        assert [r.as_json() for r in stored] == summary.rejections
        warned = sink.events("deal quarantined: a value cannot be read")
        assert [(e["deal_id"], e["field"], e["level"]) for e in warned] == [(bad, "score", "warning")]
    assert env.writes() == writes_before, "an unchanged CRM with one bad value: nothing written"
    assert env.view.open_tasks_of(bad) == task_before, "the full sweep did not complete its task as an orphan"
    dry = env.run("full", dry_run=True)
    assert dry.status == "succeeded" and dry.deals["unreadable"] == 1


def test_fixing_the_value_brings_the_deal_back(env: Env) -> None:
    env.run("full")
    bad = _open_unqualified_with_task(env)
    _set_raw(env, bad, SCORE_FIELD[env.crm], BAD_SCORE[env.crm])
    assert env.run().deals["unreadable"] == 1
    env.advance_days(0.01)
    _set_raw(env, bad, SCORE_FIELD[env.crm], None if env.crm == "salesforce" else "")
    fixed = env.run()
    assert fixed.status == "succeeded", fixed.error
    assert fixed.as_json()["deals"]["unreadable"] == 0 and not fixed.rejections
    assert env.view.deals()[bad]["status"] is not None, "judged and written again"


def test_a_single_deal_run_names_the_bad_field(env: Env) -> None:
    env.run("full")
    bad = _open_unqualified_with_task(env)
    _set_raw(env, bad, SCORE_FIELD[env.crm], BAD_SCORE[env.crm])
    summary = env.run("deal", deal_id=bad)
    assert summary.status == "succeeded", summary.error
    assert [(r["deal_id"], r["operation"]) for r in summary.rejections] == [(bad, "read")]
