"""The planner: diff before write, and exactly one task per unqualified deal."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.model import TaskAction
from connectors.registry import LedgerEntry
from rules import Deal, DealFlags, Framework, evaluate
from worker.planner import PlanContext, plan_closing, plan_page

TODAY = date(2026, 11, 27)  # a Friday
CTX = PlanContext("crm", TODAY, datetime(2026, 11, 27, 12, tzinfo=UTC), 3)
GOOD = {
    "budget": "85000",
    "authority": "CFO",
    "need": "Replace three nightly ETL jobs",
    "timing": "2027-01-15",
}


NO_FLAGS = DealFlags()


def deal(flags: DealFlags = NO_FLAGS, flagged_since: date | None = None, **fields: object) -> Deal:
    values = {**GOOD, **fields}
    return Deal(id="D1", name="Acme POC", owner_id="005A", flags=flags, flagged_since=flagged_since, **values)  # type: ignore[arg-type]


def entry(state: str = "open") -> LedgerEntry:
    return LedgerEntry("key", "D1", "T1", state, ("budget",))


@pytest.mark.parametrize(
    ("fields", "flags", "flagged_since", "open_task", "status_write", "task_action"),
    [
        ({"budget": "TBD"}, DealFlags(), None, None, True, TaskAction.CREATE),
        (
            {"budget": "TBD"},
            DealFlags("needs_qualification", ("budget",), 75),
            TODAY,
            entry(),
            False,
            None,
        ),
        (
            {"budget": "TBD", "need": "x"},
            DealFlags("needs_qualification", ("budget",), 75),
            TODAY,
            entry(),
            True,
            TaskAction.UPDATE,
        ),
        ({}, DealFlags("needs_qualification", ("budget",), 75), TODAY, entry(), True, TaskAction.COMPLETE),
        ({}, DealFlags("qualified", (), 100), None, None, False, None),
        ({}, DealFlags(), None, None, True, None),
        (
            {"budget": "TBD"},
            DealFlags("needs_qualification", ("budget",), 75),
            TODAY,
            None,
            False,
            TaskAction.CREATE,
        ),
    ],
    ids=[
        "first-flag-creates",
        "unchanged-writes-nothing",
        "missing-changed-updates-task",
        "qualified-completes-task",
        "qualified-unchanged",
        "first-seen-qualified-writes-status-only",
        "flag-shown-but-no-task-creates",
    ],
)
def test_plan_page(
    bant: Framework,
    fields: dict[str, object],
    flags: DealFlags,
    flagged_since: date | None,
    open_task: LedgerEntry | None,
    status_write: bool,
    task_action: TaskAction | None,
) -> None:
    """Status is written only when it differs; the task is created, updated or completed as needed."""
    d = deal(flags, flagged_since, **fields)
    plan = plan_page([d], [evaluate(d, bant, TODAY)], {"D1": open_task} if open_task else {}, CTX)
    assert bool(plan.status_writes) is status_write
    assert [t.action for t in plan.task_writes] == ([task_action] if task_action else [])


def test_task_content_tells_the_rep_what_to_confirm(bant: Framework) -> None:
    """A POC's task is high priority, owned by the deal owner, due in 3 business days, and names the gaps."""
    d = deal(deal_type="POC", budget="TBD")
    task = plan_page([d], [evaluate(d, bant, TODAY)], {}, CTX).task_writes[0]
    assert task.owner_id == "005A"
    assert task.priority == "High"
    assert task.due == date(2026, 12, 2)
    assert "Budget" in task.subject and "POC" in task.subject
    assert "'TBD' is a placeholder" in task.description


def test_sync_key_is_stable_per_deal_and_connection(bant: Framework) -> None:
    """The same deal always gets the same task key within a connection, and another in another one."""
    d = deal(budget=None)
    a = evaluate(d, bant, TODAY)
    first = plan_page([d], [a], {}, CTX).task_writes[0].sync_key
    assert first == plan_page([d], [a], {}, CTX).task_writes[0].sync_key
    other = PlanContext("other", TODAY, CTX.now, 3)
    assert plan_page([d], [a], {}, other).task_writes[0].sync_key != first


def test_plan_closing_completes_orphans() -> None:
    """Open tasks of deals a full sweep no longer sees are completed."""
    plan = plan_closing({"D9": LedgerEntry("k9", "D9", "T9", "open", ("need",))}, CTX)
    assert [(t.action, t.deal_id, t.task_id) for t in plan.task_writes] == [(TaskAction.COMPLETE, "D9", "T9")]
