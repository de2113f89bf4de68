"""The follow-up task's life with people in the CRM, for both CRMs through whole runs: reps delete,
complete and edit tasks, admins wipe them, deals escalate, qualify and break again, connections are renamed
or installed twice, and an older bant-sync's tasks are adopted. After each: exactly one open task per open
unqualified deal, none elsewhere, no key twice, and a further full sweep writes nothing."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import FaultRule, Sandbox
from tests.integration.conftest import Env
from tests.integration.invariants import (
    COMPLETED_STATUS,
    DUE_BUSINESS_DAYS,
    HIGH,
    OPEN_STATUS,
    UNQUALIFIED,
    assert_settled,
    business_days_after,
)
from worker import exit_codes
from worker.cli.app import main
from worker.cli.sync import exit_code_for
from worker.config.loader import load_settings

try:
    from connectors.task_keys import legacy_sync_key
except ImportError:  # before 0.2 the only key was today's legacy one
    from connectors.task_keys import sync_key as legacy_sync_key


# ----- helpers ----------------------------------------------------------------------------------------------
def _deal(
    env: Env,
    statuses: Collection[str] = UNQUALIFIED,
    *,
    poc: bool | None = None,
    min_missing: int = 0,
    skip: Collection[str] = (),
) -> str:
    """The first open deal (by id) with one of `statuses`, POC or not, missing at least `min_missing`."""
    for deal_id, deal in sorted(env.view.deals().items()):
        if not deal["open"] or deal["status"] not in statuses or deal_id in skip:
            continue
        if poc is not None and (str(deal["type"] or "").lower() == "poc") != poc:
            continue
        if len(env.view.missing_of(deal_id)) >= min_missing:
            return deal_id
    raise AssertionError(f"the seed has no open deal with status in {sorted(statuses)} (poc={poc})")


def _the_open_task(env: Env, deal_id: str) -> dict[str, Any]:
    tasks = env.view.open_tasks_of(deal_id)
    assert len(tasks) == 1, f"deal {deal_id} has {len(tasks)} open tasks: {tasks}"
    return tasks[0]


def _touch(env: Env, deal_id: str) -> None:
    """A rep edits something BANT does not read (the amount), so the deal is in the next incremental run."""
    amount = env.view.deal_field(deal_id, "amount")
    env.view.set_deal_field(deal_id, "amount", int(float(amount or 0)) + 1000)


def _succeeded_without_rejections(summary: Any) -> None:
    assert summary.status == "succeeded", summary.error
    assert summary.deals.get("rejected", 0) == 0, summary.deals
    assert summary.tasks.get("rejected", 0) == 0, summary.tasks
    assert exit_code_for(summary) == exit_codes.OK


def _with_run_setting(env: Env, name: str, value: str) -> None:
    """Restart bant-sync with `[run] NAME = "VALUE"` added to its config file."""
    text = env.config.read_text(encoding="utf-8")
    env.config.write_text(f'{text}\n[run]\n{name} = "{value}"\n', encoding="utf-8")
    env.restart()


# ----- 1. a rep deletes the task ----------------------------------------------------------------------------
def test_a_deleted_task_is_recreated_when_its_deal_next_changes(env: Env) -> None:
    """A rep deletes the task of an unqualified deal and later edits the deal: the incremental run that
    reads the deal creates a new open task for it."""
    env.run("full")
    deal_id = _deal(env)
    gone = _the_open_task(env, deal_id)
    env.view.delete_task(gone["id"])
    _touch(env, deal_id)
    summary = env.run()
    _succeeded_without_rejections(summary)
    assert _the_open_task(env, deal_id)["id"] != gone["id"]
    assert_settled(env)


def test_every_full_sweep_recreates_deleted_tasks(env: Env) -> None:
    """Reps delete the tasks of three unqualified deals they never touch again: the next full sweep
    recreates each, once."""
    env.run("full")
    deleted: list[str] = []
    for _ in range(3):
        deal_id = _deal(env, skip=deleted)
        env.view.delete_task(_the_open_task(env, deal_id)["id"])
        deleted.append(deal_id)
    assert all(env.view.open_tasks_of(d) == [] for d in deleted)
    _succeeded_without_rejections(env.run("full"))
    for deal_id in deleted:
        _the_open_task(env, deal_id)
    assert_settled(env)


# ----- 2. a rep completes the task while the deal is still unqualified --------------------------------------
@pytest.mark.parametrize("next_run", ["incremental-after-an-edit", "full-sweep"])
def test_a_task_completed_too_early_is_reopened_saying_what_is_still_missing(env: Env, next_run: str) -> None:
    """A rep marks the task done but the deal is still unqualified: the next run that reads the deal
    reopens that same task, and its body's first line says "Reopened" and names each missing criterion."""
    env.run("full")
    deal_id = _deal(env)
    task = _the_open_task(env, deal_id)
    env.view.complete_task(task["id"])
    assert env.view.task(task["id"])["status"] == COMPLETED_STATUS[env.crm]
    if next_run == "full-sweep":
        summary = env.run("full")
    else:
        _touch(env, deal_id)
        summary = env.run()
    _succeeded_without_rejections(summary)
    reopened = _the_open_task(env, deal_id)
    assert reopened["id"] == task["id"]
    assert reopened["status"] == OPEN_STATUS[env.crm]
    first_line = (str(reopened["body"] or "").splitlines() or [""])[0]
    assert "Reopened" in first_line, reopened["body"]
    missing = env.view.missing_of(deal_id)
    assert missing, "the deal should still be missing something"
    assert [m for m in missing if m not in first_line.lower()] == [], first_line
    assert_settled(env)


def test_completed_tasks_new_task_keeps_the_completed_task_and_opens_another(env: Env) -> None:
    """With `[run] completed_tasks = "new_task"`, a task a rep completed too early stays completed and the
    deal gets a new open task: one open task, the old one still completed."""
    env.run("full")
    _with_run_setting(env, "completed_tasks", "new_task")
    deal_id = _deal(env)
    task = _the_open_task(env, deal_id)
    env.view.complete_task(task["id"])
    _touch(env, deal_id)
    _succeeded_without_rejections(env.run())
    assert env.view.task(task["id"])["status"] == COMPLETED_STATUS[env.crm]
    assert _the_open_task(env, deal_id)["id"] != task["id"]
    assert len(env.view.tasks_of(deal_id)) == 2
    assert_settled(env)
    assert len(env.view.tasks_of(deal_id)) == 2


@pytest.mark.parametrize("status", ["needs_qualification", "poc_unqualified"])
def test_completed_tasks_leave_keeps_the_task_completed_and_creates_nothing(env: Env, status: str) -> None:
    """With BANT_SYNC_RUN__COMPLETED_TASKS=leave, a task a rep completed too early on a deal whose status
    stays the same stays completed, and no other task is created, by incremental runs or full sweeps."""
    env.run("full")
    env.restart(environ={"BANT_SYNC_RUN__COMPLETED_TASKS": "leave"})
    deal_id = _deal(env, {status})
    task = _the_open_task(env, deal_id)
    env.view.complete_task(task["id"])
    _touch(env, deal_id)
    _succeeded_without_rejections(env.run())
    _succeeded_without_rejections(env.run("full"))
    assert [(t["id"], t["status"]) for t in env.view.tasks_of(deal_id)] == [
        (task["id"], COMPLETED_STATUS[env.crm])
    ]
    assert env.view.deals()[deal_id]["status"] == status
    assert_settled(env, may_lack_task={deal_id})


# ----- 3. escalations are always visible --------------------------------------------------------------------
def test_going_qualify_out_reopens_the_task_high_and_due_soon(env: Env) -> None:
    """Thirty-one days after being flagged, every still-unqualified deal goes qualify_out with its task
    open (one a rep completed reopened), High and due today + 3 business days."""
    env.run("full")
    deal_id = _deal(env, {"needs_qualification"})
    task = _the_open_task(env, deal_id)
    env.view.complete_task(task["id"])
    env.advance_days(31)
    _succeeded_without_rejections(env.run("full"))
    deals = env.view.deals()
    assert deals[deal_id]["status"] == "qualify_out"
    assert _the_open_task(env, deal_id)["id"] == task["id"]
    due = business_days_after(env.today(), DUE_BUSINESS_DAYS)
    escalated = [i for i, d in deals.items() if d["open"] and d["status"] == "qualify_out"]
    assert len(escalated) > 1
    wrong = {
        i: (t["status"], t["priority"], t["due"])
        for i in escalated
        if (t := _the_open_task(env, i))["priority"] != HIGH[env.crm] or t["due"] != due
    }
    assert wrong == {}, f"qualify_out tasks not High and due {due}: {list(wrong.items())[:5]}"
    assert_settled(env)


@pytest.mark.parametrize("completed_tasks", ["reopen", "leave"])
def test_a_deal_turned_poc_reopens_its_task_high_and_due_soon(env: Env, completed_tasks: str) -> None:
    """A non-POC deal whose rep completed its task becomes a POC a week later: the task is reopened, High,
    due today + 3 business days — under `completed_tasks = "leave"` too (escalations are always visible)."""
    env.run("full")
    if completed_tasks != "reopen":
        _with_run_setting(env, "completed_tasks", completed_tasks)
    deal_id = _deal(env, {"needs_qualification"}, poc=False)
    task = _the_open_task(env, deal_id)
    env.view.complete_task(task["id"])
    env.advance_days(7)
    env.view.set_deal_field(deal_id, "type", "POC")
    _succeeded_without_rejections(env.run())
    assert env.view.deals()[deal_id]["status"] == "poc_unqualified"
    now_open = _the_open_task(env, deal_id)
    assert (now_open["priority"], now_open["due"]) == (
        HIGH[env.crm],
        business_days_after(env.today(), DUE_BUSINESS_DAYS),
    )
    assert now_open["id"] == task["id"]
    assert_settled(env)


# ----- 4. every task is gone --------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["bulk-delete", "sandbox-refresh"])
def test_one_full_sweep_restores_every_task_after_the_crm_lost_them_all(env: Env, how: str) -> None:
    """An admin bulk-deletes every bant-sync task (or the sandbox org is refreshed from its seed): one full
    sweep gives every unqualified deal exactly one open task again, without a rejection (exit 0)."""
    env.run("full")
    if how == "bulk-delete":
        assert env.view.delete_all_tasks() > 0
    else:
        env.sb.reset()
    assert env.view.tasks() == []
    summary = env.run("full")
    _succeeded_without_rejections(summary)
    assert any(d["status"] in UNQUALIFIED for d in env.view.deals().values())
    assert_settled(env)


# ----- 5. qualified, then unqualified again -----------------------------------------------------------------
def test_a_deal_that_qualified_and_broke_again_gets_an_open_task_back(env: Env) -> None:
    """A rep fixes BANT (bant-sync completes the task), later blanks Budget: the deal gets an open task
    again, twice over, and every run succeeds without a rejection."""
    env.run("full")
    deal_id = _deal(env)
    for _ in range(2):
        env.view.fix_bant(deal_id)
        _succeeded_without_rejections(env.run())
        assert env.view.deals()[deal_id]["status"] == "qualified"
        assert env.view.open_tasks_of(deal_id) == []
        env.view.set_deal_field(deal_id, "budget", None)
        _succeeded_without_rejections(env.run())
        assert env.view.deals()[deal_id]["status"] in UNQUALIFIED
        assert "budget" in env.view.missing_of(deal_id)
        _the_open_task(env, deal_id)
        _succeeded_without_rejections(env.run("full"))
    assert_settled(env)


# ----- 6. a person's edits to the task ----------------------------------------------------------------------
def test_a_rep_s_edits_to_the_task_stand_while_the_verdict_is_unchanged(env: Env) -> None:
    """A rep retitles the task, moves its due date and reassigns it: while the deal's verdict is unchanged,
    no run writes to that task — not an incremental run reading the deal, not a full sweep."""
    env.run("full")
    deal_id = _deal(env)
    task = _the_open_task(env, deal_id)
    other_owner = next(o for o in env.view.owners() if o != task["owner"])
    env.view.edit_task(
        task["id"],
        subject="Call Maria about the budget",
        due=env.today() + timedelta(days=20),
        owner=other_owner,
    )
    edited = env.view.task(task["id"])
    _touch(env, deal_id)
    _succeeded_without_rejections(env.run())
    assert env.view.task(task["id"]) == edited
    _succeeded_without_rejections(env.run("full"))
    assert env.view.task(task["id"]) == edited
    assert_settled(env)
    assert env.view.task(task["id"]) == edited


def test_a_verdict_change_rewrites_the_subject_and_body_a_rep_edited(env: Env) -> None:
    """When what a deal is missing changes, bant-sync rewrites the subject and body of its open task (the
    same task), whatever a rep had made of them."""
    env.run("full")
    deal_id = _deal(env, min_missing=2)
    task = _the_open_task(env, deal_id)
    env.view.edit_task(task["id"], subject="Call Maria about the budget")
    before = env.view.missing_of(deal_id)
    env.view.fix_bant(deal_id)
    env.view.set_deal_field(deal_id, before[0], None)
    _succeeded_without_rejections(env.run())
    assert env.view.missing_of(deal_id) == [before[0]]
    rewritten = _the_open_task(env, deal_id)
    assert rewritten["id"] == task["id"]
    assert rewritten["subject"] != "Call Maria about the budget"
    assert rewritten["body"] != task["body"]
    assert_settled(env)


# ----- 7. the same CRM under another name or another install ------------------------------------------------
def _task_ids_by_deal(env: Env) -> Counter[str]:
    return Counter(t["deal_id"] for t in env.view.task_details())


def test_renaming_the_connection_makes_no_second_task(env: Env) -> None:
    """The connection is renamed in the config file: a new process's full sweep under the new name finds
    the tasks it made under the old one and creates none."""
    env.run("full")
    before = {t["id"] for t in env.view.task_details()}
    env.rename_connection(f"{env.crm}-renamed")
    _succeeded_without_rejections(env.run("full"))
    assert {t["id"] for t in env.view.task_details()} == before
    assert_settled(env)


def test_a_second_install_on_the_same_crm_makes_no_second_task(env: Env, tmp_path: Path) -> None:
    """A second bant-sync install (its own config and state directory) points at the same CRM: its full
    sweep creates no task, and neither install writes anything afterwards."""
    env.run("full")
    before = {t["id"] for t in env.view.task_details()}
    first = env.config
    env.restart(config=env.sb.write_config(tmp_path / "second-install.toml"))
    _succeeded_without_rejections(env.run("full"))
    assert {t["id"] for t in env.view.task_details()} == before
    assert max(_task_ids_by_deal(env).values()) == 1
    assert_settled(env)
    env.restart(config=first)
    assert_settled(env)


# ----- 8. two connections on one CRM account ----------------------------------------------------------------
def _duplicate_connection(config: Path, name: str, copy: str) -> None:
    """Add `[connections.COPY]`, the same table as `[connections.NAME]`, to the config and its secrets."""
    for path in (config, config.with_name(f"{config.stem}.secrets.toml")):
        blocks = path.read_text(encoding="utf-8").split("\n\n")
        table = next(b for b in blocks if b.strip().startswith(f"[connections.{name}]"))
        twin = table.strip().replace(f"[connections.{name}]", f"[connections.{copy}]", 1)
        path.write_text("\n\n".join(blocks).rstrip("\n") + f"\n\n{twin}\n", encoding="utf-8")


def test_two_connections_on_one_crm_account_are_refused_naming_both(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two connections in one config reach the same CRM account: `bant-sync sync` of either exits with the
    configuration-error code, naming both connections, and writes nothing."""
    copy = f"{env.crm}-again"
    _duplicate_connection(env.config, env.crm, copy)
    assert set(load_settings(str(env.config), environ={}).connections) >= {env.crm, copy}
    env.sb.reset_requests()
    for name in (env.crm, copy):
        code = main(["--config", str(env.config), "--log-level", "error", "sync", "--connection", name])
        captured = capsys.readouterr()
        output = captured.out + captured.err
        assert code == exit_codes.CONFIG, output
        assert env.crm in output and copy in output, output
        assert "Traceback" not in output
    assert env.write_requests() == []
    assert env.view.tasks() == []


# ----- 9. tasks written by the previous version -------------------------------------------------------------
def _legacy_state(env: Env) -> dict[str, str]:
    """Turn the CRM and the state store into what bant-sync before 0.2 left: every task and ledger row keyed
    `legacy_sync_key(connection, deal)`, the ledger filed under the connection's name. Returns each task's
    current (new) key by task id."""
    tasks = env.view.task_details()
    new_keys = {t["id"]: t["key"] for t in tasks}
    url = load_settings(str(env.config), environ={}).state.database_url()
    assert url.startswith("sqlite:///"), url
    env.worker.close()
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE task_ledger SET connection = ?", (env.crm,))
        for task in tasks:
            old = legacy_sync_key(env.crm, task["deal_id"])
            env.view.set_task_key(task["id"], old)
            db.execute(
                "UPDATE task_ledger SET sync_key = ? WHERE connection = ? AND sync_key = ?",
                (old, env.crm, task["key"]),
            )
        rows = db.execute("SELECT sync_key FROM task_ledger WHERE connection = ?", (env.crm,)).fetchall()
    assert rows and all(str(key).startswith("bs1-") for (key,) in rows), rows[:3]
    env.restart()
    return new_keys


def test_tasks_keyed_by_the_previous_version_are_adopted(env: Env) -> None:
    """An install upgraded from the version whose keys hashed the connection name: one full sweep gives
    every one of its tasks (open, completed by a rep, completed by bant-sync) the new key, in place — no
    deal gets a second task."""
    env.run("full")
    fixed = _deal(env)
    env.view.fix_bant(fixed)
    env.run()
    assert env.view.open_tasks_of(fixed) == []
    rep_completed = _deal(env, skip=[fixed])
    env.view.complete_task(_the_open_task(env, rep_completed)["id"])
    new_keys = _legacy_state(env)
    assert all(t["key"].startswith("bs1-") for t in env.view.task_details())
    _succeeded_without_rejections(env.run("full"))
    assert {t["id"]: t["key"] for t in env.view.task_details()} == new_keys
    _the_open_task(env, rep_completed)
    assert_settled(env)


# ----- 10. the deal's own write is refused ------------------------------------------------------------------
def _reject_next_deal_update(sb: Sandbox, crm: str) -> None:
    """A validation rule refuses the first row of the next deal status update."""
    if crm == "salesforce":
        rule = FaultRule(
            "partial_batch",
            crm="salesforce",
            method="PATCH",
            path=r"/composite/sobjects$",
            rows=(0,),
            times=1,
            error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
            message="Opportunities in Negotiation need a finance approval",
        )
    else:
        rule = FaultRule(
            "partial_batch",
            crm="hubspot",
            path=r"/objects/deals/batch/(update|upsert)$",
            rows=(0,),
            times=1,
            error_code="VALIDATION_ERROR",
            message="Deals in contract need a finance approval",
        )
    sb.add_fault(rule)


def test_a_deal_whose_status_write_is_rejected_gets_no_task_in_that_run(env: Env) -> None:
    """A qualified deal loses its Budget but the CRM refuses bant-sync's status write: that run rejects the
    deal and creates no task for it; once the CRM accepts, the next sweep writes both."""
    env.run("full")
    deal_id = _deal(env, {"qualified"})
    assert env.view.tasks_of(deal_id) == []
    env.view.set_deal_field(deal_id, "budget", None)
    _reject_next_deal_update(env.sb, env.crm)
    summary = env.run()
    assert summary.deals.get("rejected", 0) == 1, summary.deals
    assert env.view.deals()[deal_id]["status"] == "qualified"
    assert env.view.tasks_of(deal_id) == []
    assert summary.tasks.get("created", 0) == 0, summary.tasks
    env.sb.clear_faults()
    _succeeded_without_rejections(env.run("full"))
    assert env.view.deals()[deal_id]["status"] in UNQUALIFIED
    _the_open_task(env, deal_id)
    assert_settled(env)
