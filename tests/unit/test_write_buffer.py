"""The write buffer: only full batches until the end, pages completed in order, nothing lost."""

from __future__ import annotations

from datetime import UTC, date, datetime

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
from rules import Status
from worker.write_buffer import PendingPage, WriteBuffer

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def status(deal: str) -> StatusWrite:
    return StatusWrite(deal, Status.NEEDS_QUALIFICATION, ("budget",), 75, NOW, date(2026, 11, 27))


def task(deal: str) -> TaskWrite:
    return TaskWrite(TaskAction.CREATE, f"k-{deal}", deal, "005", "s", "d", date(2026, 12, 2))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[WritePlan] = []

    def __call__(self, plan: WritePlan) -> list[RowOutcome]:
        self.calls.append(plan)
        return [
            RowOutcome(w.deal_id, WriteTarget.STATUS, OutcomeKind.WRITTEN) for w in plan.status_writes
        ] + [RowOutcome(t.deal_id, WriteTarget.TASK, OutcomeKind.WRITTEN) for t in plan.task_writes]


def page(n: int, first: int, tasks: int) -> tuple[PendingPage, WritePlan]:
    ids = [f"D{first + i}" for i in range(n)]
    cursor = Cursor(NOW, ids[-1])
    return PendingPage(cursor, []), WritePlan(
        tuple(status(d) for d in ids), tuple(task(d) for d in ids[:tasks])
    )


def test_tasks_are_carried_until_a_batch_is_full() -> None:
    """Pages of 200 deals with 110 new tasks each: task calls carry 100 each, not 100 + 10 per page."""
    sent = Recorder()
    buffer = WriteBuffer(sent, 100, 100)
    done = []
    for index in range(5):
        pending, plan = page(200, index * 200, 110)
        buffer.add(pending, plan)
        if buffer.ready():
            done.extend(buffer.flush().done)
    done.extend(buffer.flush(final=True).done)
    task_counts = [len(p.task_writes) for p in sent.calls if p.task_writes]
    assert sum(task_counts) == 550
    assert all(n % 100 == 0 for n in task_counts[:-1])
    assert sum(len(p.status_writes) for p in sent.calls) == 1000
    assert [p.cursor.deal_id for p in done if p.cursor] == ["D199", "D399", "D599", "D799", "D999"]


def test_a_page_is_done_only_when_all_its_writes_were_sent() -> None:
    """A page whose tasks still wait in the buffer is not reported done, so its cursor is not saved."""
    buffer = WriteBuffer(Recorder(), 100, 100)
    pending, plan = page(100, 0, 50)
    buffer.add(pending, plan)
    assert buffer.ready()
    assert buffer.flush().done == []
    assert buffer.flush(final=True).done == [pending]
    assert buffer.empty


def test_pages_without_writes_complete_at_once_in_order() -> None:
    """An unchanged page is done immediately, but never before an earlier page that still waits."""
    buffer = WriteBuffer(Recorder(), 100, 100)
    first, plan = page(10, 0, 10)
    buffer.add(first, plan)
    quiet = PendingPage(Cursor(NOW, "D99"), [])
    buffer.add(quiet, WritePlan())
    assert buffer.flush().done == []
    assert buffer.flush(final=True).done == [first, quiet]
