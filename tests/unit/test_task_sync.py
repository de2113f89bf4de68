"""TaskSync, the worker's side of task writes (connectors keep no task state): it reads the CRM's tasks by
key, keeps the ledger true to them, records an `intended` row before each create and the task after, and
settles a create refused because its key is taken by updating that task in place."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.model import (
    CONTENT_FIELDS,
    CrmTask,
    OutcomeKind,
    RowOutcome,
    TaskAction,
    TaskField,
    TaskWrite,
    WritePlan,
    WriteTarget,
)
from connectors.task_keys import legacy_sync_key, retired_key, sync_key
from rules import Assessment, Deal, DealFlags, Status
from rules.model import Gap
from worker.state import LedgerEntry, StateStore, StoreLedger
from worker.sync.planner import PlanContext
from worker.sync.task_sync import TaskSync, may_have_task

TODAY = date(2026, 11, 27)
CTX = PlanContext(TODAY, datetime(2026, 11, 27, 12, tzinfo=UTC), 3)
IDENTITY = "fake:acct-1"
KEY = sync_key(IDENTITY, "D1")


class FakeCrm:
    """A CRM account holding tasks with a unique key; `lost` keys are created but answered UNCERTAIN.
    Records, for each apply, the ledger rows of its keys as they stood when the call was sent."""

    identity = IDENTITY

    def __init__(self, ledger: StoreLedger) -> None:
        self.ledger = ledger
        self.tasks: dict[str, CrmTask] = {}
        self.lost: set[str] = set()
        self.applied: list[list[TaskWrite]] = []
        self.ledger_at_send: list[dict[str, LedgerEntry]] = []
        self.finds: list[list[str]] = []

    def add(self, key: str, is_open: bool = True) -> CrmTask:
        task = CrmTask(f"T{len(self.tasks) + 1}", key, is_open)
        self.tasks[task.task_id] = task
        return task

    def find_tasks(self, keys: Sequence[str]) -> dict[str, CrmTask]:
        self.finds.append(list(keys))
        return {t.sync_key: t for t in self.tasks.values() if t.sync_key in keys}

    def apply(self, plan: WritePlan) -> list[RowOutcome]:
        writes = list(plan.task_writes)
        self.applied.append(writes)
        self.ledger_at_send.append(self.ledger.lookup(w.sync_key for w in writes))
        return [self._one(w) for w in writes]

    def _one(self, write: TaskWrite) -> RowOutcome:
        def outcome(kind: OutcomeKind, task_id: str | None = None, code: str | None = None) -> RowOutcome:
            return RowOutcome(write.deal_id, WriteTarget.TASK, kind, code, None, task_id, write.sync_key)

        if write.action is TaskAction.CREATE:
            if any(t.sync_key == write.sync_key for t in self.tasks.values()):
                return outcome(OutcomeKind.REJECTED, code="DUPLICATE_VALUE")
            created = self.add(write.sync_key)
            if write.sync_key in self.lost:
                return outcome(OutcomeKind.REJECTED, code="UNCERTAIN")
            return outcome(OutcomeKind.WRITTEN, created.task_id)
        found = self.tasks.get(write.task_id or "")
        if found is None:
            return outcome(OutcomeKind.REJECTED, write.task_id, "ENTITY_IS_DELETED")
        task = found
        if TaskField.KEY in write.fields:
            task = replace(task, sync_key=write.sync_key)
        if write.action is not TaskAction.UPDATE:
            task = replace(task, is_open=write.action is TaskAction.REOPEN)
        self.tasks[task.task_id] = task
        return outcome(OutcomeKind.WRITTEN, task.task_id)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[StoreLedger]:
    store = StateStore.open(f"sqlite:///{tmp_path}/state.db")
    try:
        yield store.ledger("conn")
    finally:
        store.close()


def deal(status: str | None = None, missing: tuple[str, ...] | None = None) -> Deal:
    return Deal(id="D1", name="Acme", owner_id="005A", flags=DealFlags(status, missing))


def assess(status: Status = Status.NEEDS_QUALIFICATION, missing: tuple[str, ...] = ("budget",)) -> Assessment:
    if not status.is_unqualified:
        return Assessment("D1", status, (), 100, (), False, None)
    gaps = tuple(Gap(c, c.title(), f"Confirm the {c}.", c, f"{c.title()}: empty") for c in missing)
    return Assessment("D1", status, missing, 50, tuple(g.reason for g in gaps), False, TODAY, gaps)


def run(sync: TaskSync, d: Deal, a: Assessment, ctx: PlanContext = CTX) -> list[RowOutcome]:
    """One page of one deal, as the pipeline drives TaskSync: facts, plan, apply."""
    facts = sync.facts([d], [a])
    return sync.apply(sync.plan([d], [a], facts, ctx))


def test_an_intended_row_is_recorded_before_a_create_and_the_task_after(ledger: StoreLedger) -> None:
    """The create goes out with an `intended` row already in the ledger; once written the row holds the
    CRM's id, open, and the verdict the task was written with."""
    crm = FakeCrm(ledger)
    (outcome,) = run(TaskSync(crm, ledger), deal(), assess())
    assert crm.ledger_at_send == [
        {KEY: LedgerEntry(KEY, "D1", None, "intended", ("budget",), "needs_qualification")}
    ]
    assert ledger.lookup([KEY]) == {
        KEY: LedgerEntry(KEY, "D1", outcome.task_id, "open", ("budget",), "needs_qualification")
    }


def test_an_uncertain_create_stays_intended_and_is_found_even_after_the_deal_qualified(
    ledger: StoreLedger,
) -> None:
    """A create whose answer was lost stays `intended`; the next run looks its key up though the deal has
    qualified (so its key is no longer asked for on its own), records the task, and completes it."""
    crm = FakeCrm(ledger)
    crm.lost.add(KEY)
    (outcome,) = run(TaskSync(crm, ledger), deal(), assess())
    assert (outcome.kind, outcome.code) == (OutcomeKind.REJECTED, "UNCERTAIN")
    assert ledger.lookup([KEY])[KEY].state == "intended"
    assert len(crm.applied) == 1
    qualified = deal("needs_qualification", ("budget",))
    (done,) = run(TaskSync(crm, ledger), qualified, assess(Status.QUALIFIED))
    assert [w.action for w in crm.applied[-1]] == [TaskAction.COMPLETE]
    assert (done.kind, done.task_id) == (OutcomeKind.WRITTEN, "T1")
    assert [t.is_open for t in crm.tasks.values()] == [False]
    assert (ledger.lookup([KEY])[KEY].task_id, ledger.lookup([KEY])[KEY].state) == ("T1", "completed")


@pytest.mark.parametrize(
    ("is_open", "action"), [(True, TaskAction.UPDATE), (False, TaskAction.REOPEN)], ids=["open", "completed"]
)
def test_a_create_refused_because_its_key_is_taken_rewrites_that_task(
    ledger: StoreLedger, is_open: bool, action: TaskAction
) -> None:
    """A CREATE the CRM refuses because a task holds the key (another install made it after this run
    looked) is looked up and becomes an update (or a reopen) of that task: no second task, one outcome,
    and the ledger holds that task."""
    crm = FakeCrm(ledger)
    sync = TaskSync(crm, ledger)
    facts = sync.facts([deal()], [assess()])
    writes = sync.plan([deal()], [assess()], facts, CTX)
    existing = crm.add(KEY, is_open)
    (outcome,) = sync.apply(writes)
    assert (outcome.kind, outcome.task_id) == (OutcomeKind.WRITTEN, existing.task_id)
    (retry,) = crm.applied[-1]
    assert (retry.action, retry.task_id) == (action, existing.task_id)
    assert retry.fields == CONTENT_FIELDS | {TaskField.DUE}
    assert list(crm.tasks) == [existing.task_id] and crm.tasks[existing.task_id].is_open
    assert ledger.lookup([KEY])[KEY].task_id == existing.task_id


def test_facts_correct_the_ledger_to_what_the_crm_holds(ledger: StoreLedger) -> None:
    """A row whose task is gone from the CRM is forgotten; an intended row whose task the CRM holds is
    recorded open with its id; a row whose task a person completed keeps the state bant-sync left it in
    (that is how the planner tells who completed it). Every key the ledger knows is looked up at once."""
    crm = FakeCrm(ledger)
    done = crm.add(KEY, is_open=False)
    landed = crm.add(sync_key(IDENTITY, "D2"))
    gone = legacy_sync_key("old-name", "D1")
    kept = LedgerEntry(KEY, "D1", done.task_id, "open", ("budget",), "needs_qualification")
    intended = LedgerEntry(landed.sync_key, "D2", None, "intended", ("need",), "needs_qualification")
    ledger.record([kept, LedgerEntry(gone, "D1", "T99", "open", ("need",), None), intended])
    d2 = Deal(id="D2", name="Beta", owner_id="005A")
    facts = TaskSync(crm, ledger).facts([deal(), d2], [assess(), assess(Status.QUALIFIED)])
    assert crm.finds == [sorted([KEY, gone, landed.sync_key])]
    assert (facts["D1"].crm, facts["D1"].entry) == (done, kept)
    assert facts["D2"].crm == landed
    assert ledger.entries_for(["D1", "D2"]) == {
        "D1": [kept],
        "D2": [replace(intended, task_id=landed.task_id, state="open")],
    }


def test_a_dry_run_reads_but_never_writes_the_ledger(ledger: StoreLedger) -> None:
    """With dry_run, facts look tasks up as usual but leave stale rows as they are."""
    crm = FakeCrm(ledger)
    ledger.record([LedgerEntry(KEY, "D1", "T99", "open", ("budget",), None)])
    facts = TaskSync(crm, ledger, dry_run=True).facts([deal()], [assess()])
    assert facts["D1"].crm is None
    assert ledger.lookup([KEY])[KEY].task_id == "T99"


def test_a_task_under_a_legacy_key_is_rekeyed_and_its_old_row_forgotten(ledger: StoreLedger) -> None:
    """A task the ledger knows under a pre-0.2 key is found through that key, re-keyed in place, recorded
    under the current key, and its old row is forgotten."""
    crm = FakeCrm(ledger)
    legacy = legacy_sync_key("old-name", "D1")
    task = crm.add(legacy)
    ledger.record([LedgerEntry(legacy, "D1", task.task_id, "open", ("budget",), None)])
    shown = deal("needs_qualification", ("budget",))
    (outcome,) = run(TaskSync(crm, ledger), shown, assess())
    (write,) = crm.applied[-1]
    assert (write.action, write.fields, write.sync_key) == (
        TaskAction.UPDATE,
        frozenset({TaskField.KEY}),
        KEY,
    )
    assert (outcome.kind, outcome.task_id) == (OutcomeKind.WRITTEN, task.task_id)
    assert list(crm.tasks.values()) == [replace(task, sync_key=KEY)]
    assert ledger.entries_for(["D1"]) == {
        "D1": [LedgerEntry(KEY, "D1", task.task_id, "open", ("budget",), "needs_qualification")]
    }


def test_new_task_retires_the_old_key_before_the_create_and_records_only_the_new_task(
    ledger: StoreLedger,
) -> None:
    """With completed_tasks = "new_task", the completed task's key is retired by id before the fresh
    create is sent (in one call, so the key is free), and only the new task is recorded."""
    crm = FakeCrm(ledger)
    old = crm.add(KEY, is_open=False)
    ledger.record([LedgerEntry(KEY, "D1", old.task_id, "open", ("budget",), "needs_qualification")])
    shown = deal("needs_qualification", ("budget",))
    outcomes = run(TaskSync(crm, ledger), shown, assess(), replace(CTX, completed_tasks="new_task"))
    assert [w.action for w in crm.applied[-1]] == [TaskAction.UPDATE, TaskAction.CREATE]
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN, OutcomeKind.WRITTEN]
    fresh = outcomes[1].task_id
    assert crm.tasks[old.task_id].sync_key == retired_key(KEY, old.task_id)
    assert ledger.entries_for(["D1"]) == {
        "D1": [LedgerEntry(KEY, "D1", fresh, "open", ("budget",), "needs_qualification")]
    }


@pytest.mark.parametrize(
    ("shown", "now", "expected"),
    [
        (None, Status.POC_UNQUALIFIED, False),
        ("", Status.NEEDS_QUALIFICATION, False),
        ("qualified", Status.NEEDS_QUALIFICATION, True),
        ("needs_qualification", Status.QUALIFIED, True),
        ("qualify_out", Status.NOT_EVALUATED, True),
        ("qualified", Status.QUALIFIED, False),
        ("not_evaluated", Status.QUALIFIED, False),
    ],
    ids=[
        "never-assessed",
        "blank",
        "turns-unqualified",
        "qualifies",
        "leaves-scope",
        "stays-qualified",
        "na",
    ],
)
def test_which_deals_unknown_to_the_ledger_are_looked_up(
    shown: str | None, now: Status, expected: bool
) -> None:
    """A deal the ledger does not know is looked up only if some install wrote its status and it needs a
    task now or showed an unqualified status (a task to complete)."""
    deal = Deal("d1", flags=DealFlags(status=shown))
    assessment = Assessment("d1", now, (), 100, (), False, None)
    assert may_have_task(deal, assessment) is expected
