"""Which tasks a run looks up in the CRM: none that cannot exist, and every one that may — including a
task whose deal's status field a person blanked, met by a second install that never saw it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.integration.conftest import Env
from tests.integration.invariants import assert_settled


def test_a_first_run_looks_up_no_task(env: Env) -> None:
    """No install ever wrote a status on these deals, so none can have a task: the first run creates one per
    unqualified deal without looking any up."""
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    assert summary.tasks.get("checked", 0) == 0
    assert summary.tasks["created"] == sum(1 for t in env.view.tasks() if t["open"])


def test_a_blanked_status_field_does_not_hide_a_task_from_a_second_install(env: Env, tmp_path: Path) -> None:
    """A person blanks bant-sync's status field on a flagged deal; a second install (empty ledger) sweeps
    the CRM: the deal's create meets the existing task by key (Salesforce upsert, HubSpot duplicate key
    looked up) and leaves exactly one open task, with no rejection."""
    assert env.run("full").status == "succeeded"
    deal_id = next(
        i for i, d in sorted(env.view.deals().items()) if d["open"] and d["status"] == "poc_unqualified"
    )
    (task,) = env.view.open_tasks_of(deal_id)
    env.view.set_deal_field(deal_id, "status", None)
    env.restart(config=env.sb.write_config(tmp_path / "second-install.toml"))
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    assert summary.rejections == []
    assert [t["id"] for t in env.view.open_tasks_of(deal_id)] == [task["id"]]
    assert max(Counter(t["deal_id"] for t in env.view.tasks()).values()) == 1
    assert env.view.deals()[deal_id]["status"] == "poc_unqualified"
    assert_settled(env)


def test_a_dry_run_plans_from_what_the_crm_holds(env: Env) -> None:
    """After a rep deletes one task and completes another, `sync --full --dry-run` plans exactly their
    repair (a create and a reopen) and writes nothing; the real sweep then does just that."""
    assert env.run("full").status == "succeeded"
    flagged = [
        i for i, d in sorted(env.view.deals().items()) if d["open"] and d["status"] == "poc_unqualified"
    ]
    deleted, completed = flagged[0], flagged[1]
    env.view.delete_task(env.view.open_tasks_of(deleted)[0]["id"])
    env.view.complete_task(env.view.open_tasks_of(completed)[0]["id"])
    env.sb.reset_requests()
    preview = env.run("full", dry_run=True)
    assert env.writes() == 0
    planned = sorted((p["action"], p["deal_id"]) for p in preview.planned if p["kind"] == "task")
    assert planned == sorted([("create", deleted), ("reopen", completed)])
    real = env.run("full")
    assert (real.tasks.get("created"), real.tasks.get("reopened")) == (1, 1)
    assert_settled(env)
