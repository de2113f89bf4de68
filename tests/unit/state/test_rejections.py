"""Rows the CRM refused, per run: recorded with a checkpoint (fenced like it) or at finish_run, read back
in order, counted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connectors.model import (
    Cursor,
    OutcomeKind,
    RowOutcome,
    StatusWrite,
    TaskAction,
    TaskWrite,
    WritePlan,
    WriteTarget,
)
from rules.model import Status
from worker.state import LeaseLostError, Rejection, RunRecord, StateStore, UnknownRecordError
from worker.sync.run_model import rejections_of

from .conftest import T0

TTL = timedelta(minutes=10)


def _rejection(
    deal_id: str, operation: str = "status", code: str | None = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
) -> Rejection:
    return Rejection(deal_id, operation, code, f"refused {deal_id}", T0)


def test_checkpoint_records_rejections_in_order(store: StateStore) -> None:
    """Rejections given to checkpoints come back per run in the order recorded, with their count."""
    store.start_run(RunRecord("run-1", "sf", "cli", "full", T0))
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    first = [_rejection("006B"), _rejection("006A", "task_create", None)]
    store.checkpoint(lease, Cursor(T0, "006B"), [], [], {"deals_rejected": 1}, first)
    store.checkpoint(lease, None, [], [], {}, [_rejection("006C", "task_reopen")])
    assert store.run_rejections("run-1") == [*first, _rejection("006C", "task_reopen")]
    assert store.run_rejections("run-1", limit=2) == first
    assert store.rejection_count("run-1") == 3
    assert store.rejection_count("other") == 0
    assert store.run_rejections("other") == []


def test_a_fenced_checkpoint_records_no_rejection(store: StateStore) -> None:
    """A checkpoint refused for a lost lease records none of its rejections."""
    store.start_run(RunRecord("run-1", "sf", "cli", "full", T0))
    store.start_run(RunRecord("run-2", "sf", "cli", "full", T0))
    old = store.acquire_lease("sf", "run-1", T0, TTL)
    store.acquire_lease("sf", "run-2", T0 + TTL, TTL)
    with pytest.raises(LeaseLostError):
        store.checkpoint(old, None, [], [], {}, [_rejection("006A")])
    assert store.rejection_count("run-1") == 0


def test_finish_run_records_the_rest(store: StateStore) -> None:
    """finish_run appends the rejections no checkpoint recorded; an unknown run is refused, records none."""
    store.start_run(RunRecord("run-1", "sf", "cli", "full", T0))
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    store.checkpoint(lease, None, [], [], {}, [_rejection("006A")])
    store.finish_run("run-1", T0, "failed", {}, 3, "quota", [_rejection("006B", "task_update")])
    assert [(r.deal_id, r.operation) for r in store.run_rejections("run-1")] == [
        ("006A", "status"),
        ("006B", "task_update"),
    ]
    with pytest.raises(UnknownRecordError):
        store.finish_run("nope", T0, "failed", {}, 0, None, [_rejection("006Z")])
    assert store.rejection_count("nope") == 0


def test_rejection_as_json_has_the_four_fields() -> None:
    """A rejection shows as {deal_id, operation, code, message} (no time, no run)."""
    assert _rejection("006A").as_json() == {
        "deal_id": "006A",
        "operation": "status",
        "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "message": "refused 006A",
    }


def _task(deal_id: str, action: TaskAction) -> TaskWrite:
    return TaskWrite(action, f"key-{deal_id}", deal_id, "005", "subject", "body", T0.date())


@pytest.mark.parametrize("action", list(TaskAction), ids=[a.value for a in TaskAction])
def test_a_task_rejection_is_named_after_its_action(action: TaskAction) -> None:
    """A refused task write's operation is `task_<action>` for every TaskAction; status writes are `status`;
    written and unchanged rows are no rejection."""
    status = StatusWrite("S1", Status.QUALIFIED, (), 100, T0, None)
    plan = WritePlan((status,), (_task("T0", TaskAction.CREATE), _task("T1", action)))
    outcomes = [
        RowOutcome("S1", WriteTarget.STATUS, OutcomeKind.INVALID, "BAD_VALUE", "score out of range"),
        RowOutcome("T0", WriteTarget.TASK, OutcomeKind.WRITTEN),
        RowOutcome("T1", WriteTarget.TASK, OutcomeKind.REJECTED, "ENTITY_IS_DELETED", "deleted"),
    ]
    assert [(r.deal_id, r.operation, r.code) for r in rejections_of(plan, outcomes, T0)] == [
        ("S1", "status", "BAD_VALUE"),
        ("T1", f"task_{action.value}", "ENTITY_IS_DELETED"),
    ]


def test_task_outcomes_pair_with_their_writes_in_order() -> None:
    """Two task writes of one deal in a flush (two pages) pair with its two outcomes in order, also when
    only the first outcome came back (a failure part-way)."""
    plan = WritePlan((), (_task("D", TaskAction.CREATE), _task("D", TaskAction.UPDATE)))
    first = RowOutcome("D", WriteTarget.TASK, OutcomeKind.REJECTED, "X", "first")
    second = RowOutcome("D", WriteTarget.TASK, OutcomeKind.REJECTED, "Y", "second")
    assert [r.operation for r in rejections_of(plan, [first, second], T0)] == ["task_create", "task_update"]
    assert [r.operation for r in rejections_of(plan, [first], T0)] == ["task_create"]
