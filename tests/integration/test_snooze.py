"""Snooze, through the whole pipeline on both CRMs: a rep fills in the deal's snooze-until date and reason;
bant-sync shows `snoozed`, completes the task with a note and records who snoozed; a snooze that breaks a
rule is ignored and the task says why; at expiry the deal is flagged again without anyone editing it."""

from __future__ import annotations

from datetime import date, timedelta

from tests.integration.conftest import Env

REASON = "Customer budget cycle opens on 1 January"


def _flagged(env: Env, status: str) -> str:
    return next(
        deal_id
        for deal_id, deal in sorted(env.view.deals().items())
        if deal["open"] and deal["status"] == status and len(env.view.open_tasks_of(deal_id)) == 1
    )


def _other_rep(env: Env, deal_id: str) -> str:
    owner = str(env.view.deal_field(deal_id, "owner"))
    return next(rep for rep in env.view.owners() if rep != owner)


def _day(raw: object) -> date | None:
    if raw in (None, ""):
        return None
    return raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])


def _audit(env: Env, deal_id: str) -> list[tuple[str | None, str, str | None, str | None]]:
    """The deal's audit rows, oldest first: (old status, new status, who, note)."""
    rows = env.worker.store.audit(env.connection or env.crm, deal_id)
    return [(r.old_status, r.new_status, r.actor, r.note) for r in reversed(rows)]


def _ready(env: Env, status: str = "needs_qualification") -> tuple[str, str]:
    """A full run, then a deal with that status and its one open task."""
    assert env.run("full").status == "succeeded"
    deal_id = _flagged(env, status)
    [task] = env.view.open_tasks_of(deal_id)
    return deal_id, task["id"]


def test_a_valid_snooze_shows_snoozed_completes_the_task_and_records_who(env: Env) -> None:
    """Another rep snoozes a flagged deal for two weeks with a reason: the deal shows `snoozed` and still
    lists what it misses, its task is completed with a note naming the date, the reason and the rep, and
    the audit log records the change with that rep as its actor."""
    deal_id, task_id = _ready(env)
    missing = env.view.deal_field(deal_id, "missing")
    rep = _other_rep(env, deal_id)
    until = env.today() + timedelta(days=14)
    env.view.snooze(deal_id, until, REASON, by=rep)
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    assert env.view.deals()[deal_id]["status"] == "snoozed"
    assert env.view.deal_field(deal_id, "missing") == missing
    reasons = str(env.view.deal_field(deal_id, "reasons"))
    assert reasons.splitlines()[-1] == f"Snoozed until {until.isoformat()}: {REASON}"
    assert " — " in reasons.splitlines()[0]
    task = env.view.task(task_id)
    assert not task["open"] and env.view.open_tasks_of(deal_id) == []
    assert f"until {until.isoformat()}: {REASON}" in str(task["body"])
    assert _audit(env, deal_id)[-1] == (
        "needs_qualification",
        "snoozed",
        env.view.user_of(rep),
        f"Snoozed until {until.isoformat()}: {REASON}",
    )
    env.advance_days(1)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "snoozed"
    assert len(_audit(env, deal_id)) == 2, "a second run writes no second audit row"


def test_an_expired_snooze_flags_the_deal_again_without_an_edit(env: Env) -> None:
    """When the snooze date passes, the next incremental run reads the deal again although nobody edited
    it: it is flagged again, the task bant-sync completed is reopened and says the snooze ended, and the
    audit log records the end."""
    deal_id, task_id = _ready(env)
    until = env.today() + timedelta(days=5)
    env.view.snooze(deal_id, until, REASON)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "snoozed"
    env.advance_days(6)
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    [task] = env.view.open_tasks_of(deal_id)
    assert task["id"] == task_id
    assert f"Snooze ended on {until.isoformat()}" in str(task["body"])
    assert str(env.view.deal_field(deal_id, "reasons")).splitlines()[-1] == f"Snooze ended on {until}"
    old, new, _, note = _audit(env, deal_id)[-1]
    assert (old, new, note) == ("snoozed", "needs_qualification", f"Snooze ended on {until.isoformat()}")
    assert env.run().status == "succeeded"
    assert len(env.view.open_tasks_of(deal_id)) == 1


def test_the_qualify_out_clock_runs_on_through_a_snooze(env: Env) -> None:
    """A snooze acknowledges the flag; it does not restart how long the deal has been unqualified: a deal
    flagged 10 days before a 25-day snooze is qualify_out when the snooze ends."""
    deal_id, _ = _ready(env)
    flagged = _day(env.view.deal_field(deal_id, "flagged_since"))
    env.advance_days(10)
    until = env.today() + timedelta(days=25)
    env.view.snooze(deal_id, until, REASON)
    assert env.run().status == "succeeded"
    assert _day(env.view.deal_field(deal_id, "flagged_since")) == flagged
    env.advance_days(26)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "qualify_out"
    assert _day(env.view.deal_field(deal_id, "flagged_since")) == flagged


def test_a_snooze_without_a_reason_is_ignored_and_the_task_says_why(env: Env) -> None:
    """A date without a reason (or a reason under 10 characters) does not snooze: the deal stays flagged,
    its open task is rewritten to say why, and the audit log notes the refused snooze and who set it."""
    deal_id, task_id = _ready(env)
    rep = _other_rep(env, deal_id)
    env.view.snooze(deal_id, env.today() + timedelta(days=7), "later", by=rep)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    [task] = env.view.open_tasks_of(deal_id)
    why = "Snooze ignored: a snooze needs a reason of at least 10 characters"
    assert task["id"] == task_id and why in str(task["body"])
    assert str(env.view.deal_field(deal_id, "reasons")).splitlines()[-1] == why
    assert _audit(env, deal_id)[-1] == (
        "needs_qualification",
        "needs_qualification",
        env.view.user_of(rep),
        why,
    )
    env.view.snooze(deal_id, env.today() + timedelta(days=7), None)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    assert str(env.view.task(task_id)["body"]).count("Snooze ignored: a snooze needs a reason") == 1


def test_a_snooze_past_the_limit_is_ignored_and_does_not_become_valid_by_waiting(env: Env) -> None:
    """A 45-day snooze breaks the 30-day limit: ignored, with the latest date allowed in the task. The limit
    counts from the day bant-sync first saw the date, so 20 days later it is still ignored."""
    deal_id, task_id = _ready(env)
    seen = env.today()
    env.view.snooze(deal_id, seen + timedelta(days=45), REASON)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    latest = (seen + timedelta(days=30)).isoformat()
    why = f"Snooze ignored: a snooze lasts at most 30 days: set a date on or before {latest}"
    assert why in str(env.view.task(task_id)["body"])
    env.advance_days(20)
    assert env.run("full").status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    assert env.view.open_tasks_of(deal_id)[0]["id"] == task_id
    env.view.snooze(deal_id, env.today() + timedelta(days=10), REASON)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "snoozed", "a new date within the limit holds"


def test_a_poc_cannot_be_snoozed(env: Env) -> None:
    """A POC without BANT is what the tool exists to stop: its snooze is ignored, the deal stays
    poc_unqualified and its task says POCs cannot be snoozed."""
    deal_id, task_id = _ready(env, "poc_unqualified")
    env.view.snooze(deal_id, env.today() + timedelta(days=7), REASON)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "poc_unqualified"
    [task] = env.view.open_tasks_of(deal_id)
    assert task["id"] == task_id
    assert "Snooze ignored: POCs cannot be snoozed" in str(task["body"])
    assert _audit(env, deal_id)[-1][3] == str(env.view.deal_field(deal_id, "reasons")).splitlines()[-1]


def test_a_snoozed_deal_that_qualifies_is_qualified(env: Env) -> None:
    """Filling in BANT while snoozed qualifies the deal; the snooze no longer matters and no task opens."""
    deal_id, _ = _ready(env)
    env.view.snooze(deal_id, env.today() + timedelta(days=7), REASON)
    assert env.run().status == "succeeded"
    env.view.fix_bant(deal_id)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "qualified"
    assert env.view.open_tasks_of(deal_id) == []
    assert env.view.deal_field(deal_id, "reasons") in (None, "")


SNOOZE_FIELD = {
    "salesforce": ("Opportunity", "BANT_Snooze_Until__c"),
    "hubspot": ("deals", "bant_snooze_until"),
}


def test_an_admin_deleting_the_snooze_field_stops_the_run_and_wakes_no_snoozed_deal(env: Env) -> None:
    """With a deal snoozed, an admin deletes the snooze-until field: the run fails naming it and writes
    nothing (the snoozed deal is not flagged again because its snooze became unreadable); restored, the
    next run finds the snooze as it was and changes nothing."""
    deal_id, task_id = _ready(env)
    env.view.snooze(deal_id, env.today() + timedelta(days=7), REASON)
    assert env.run().status == "succeeded"
    obj, name = SNOOZE_FIELD[env.crm]
    if env.crm == "salesforce":
        env.sb.salesforce.delete_field(obj, name)
    else:
        env.sb.hubspot.delete_property(obj, name)
    env.view.set_deal_field(deal_id, "budget", "TBD")
    failed = env.run()
    assert failed.status == "failed" and failed.error is not None and name in failed.error
    assert env.view.deals()[deal_id]["status"] == "snoozed"
    assert env.view.open_tasks_of(deal_id) == [] and not env.view.task(task_id)["open"]
    if env.crm == "salesforce":
        env.sb.salesforce.restore_field(obj, name)
    else:
        env.sb.hubspot.restore_property(obj, name)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "snoozed"
    assert env.view.open_tasks_of(deal_id) == []


def test_a_rep_who_edits_the_snooze_twice_in_a_minute_leaves_one_audit_row_per_run(env: Env) -> None:
    """Two quick edits before a run (a typo in the reason fixed) are one snooze: the run sees the last one,
    records it once, and the task note carries the corrected reason."""
    deal_id, task_id = _ready(env)
    until = env.today() + timedelta(days=10)
    env.view.snooze(deal_id, until, "Budegt cycle opens in January")
    env.advance_days(30 / 86_400)
    env.view.snooze(deal_id, until, REASON)
    assert env.run().status == "succeeded"
    notes = [note for *_, note in _audit(env, deal_id) if note]
    assert notes == [f"Snoozed until {until.isoformat()}: {REASON}"]
    assert REASON in str(env.view.task(task_id)["body"]) and "Budegt" not in str(
        env.view.task(task_id)["body"]
    )
