"""The incremental run after bant-sync's own write-backs, on both CRMs: the deals it wrote come back in the
read (neither CRM can leave them out without also leaving out a rep's edit made between bant-sync's read
and its write) but, found exactly as judged, cost no task lookup. Anything a person changed is judged:
an edit after the run, an edit between the run's read and its write, a new day, a changed framework."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.model import RowOutcome, WritePlan
from tests.integration.conftest import Env
from worker.sync.ordered_apply import OrderedApply


def _flagged(env: Env) -> str:
    return next(i for i, d in env.view.deals().items() if d["open"] and d["status"] == "poc_unqualified")


def test_the_run_after_a_write_skips_only_what_nobody_changed(env: Env) -> None:
    env.run("full")
    fixed = _flagged(env)
    env.view.fix_bant(fixed)
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    assert summary.deals["already_judged"] == summary.deals["read"] - 1
    assert env.view.deals()[fixed]["status"] == "qualified"
    assert [t["open"] for t in env.view.tasks() if t["deal_id"] == fixed] == [False]
    assert summary.tasks["checked"] == 1 and summary.tasks["completed"] == 1


def test_an_edit_between_the_read_and_the_write_is_judged_by_the_next_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rep fills in BANT on a flagged deal while the run that flagged it is between reading and writing:
    bant-sync's write then makes it the deal's last modifier, and the next run still sees the edit."""
    env.run("full")
    raced = _flagged(env)
    env.view.set_deal_fields(raced, {"budget": None})
    real_apply: Callable[[OrderedApply, WritePlan], list[RowOutcome]] = OrderedApply.apply
    edits: list[str] = []

    def apply_after_a_rep_edit(self: OrderedApply, plan: WritePlan) -> list[RowOutcome]:
        if not edits and any(w.deal_id == raced for w in plan.status_writes):
            edits.append(raced)
            env.view.fix_bant(raced)
        return real_apply(self, plan)

    monkeypatch.setattr(OrderedApply, "apply", apply_after_a_rep_edit)
    first = env.run()
    assert first.status == "succeeded", first.error
    assert edits == [raced]
    deal: dict[str, Any] = env.view.deals()[raced]
    assert deal["status"] != "qualified", "the run wrote the verdict it read before the edit"
    monkeypatch.setattr(OrderedApply, "apply", real_apply)
    second = env.run()
    assert second.status == "succeeded", second.error
    assert env.view.deals()[raced]["status"] == "qualified"
    assert [t["open"] for t in env.view.tasks() if t["deal_id"] == raced] == [False]


def test_a_new_day_judges_again_what_was_written_yesterday(env: Env) -> None:
    """The judgement key holds the day: a verdict can change overnight (a close date passes, a snooze
    ends), so deals bant-sync wrote yesterday are judged again, tasks looked up."""
    env.run("full")
    env.advance_days(1)
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    assert summary.deals["read"] > 0
    assert summary.deals.get("already_judged", 0) == 0
    assert summary.tasks["checked"] > 0
