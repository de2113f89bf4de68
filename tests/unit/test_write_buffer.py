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
from worker.sync.write_buffer import PendingPage, WriteBuffer

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


def ids(writes: tuple[StatusWrite, ...] | tuple[TaskWrite, ...]) -> list[str]:
    return [w.deal_id for w in writes]


def test_a_task_waits_while_its_deal_s_status_write_is_queued() -> None:
    """A flush that sends only part of the status queue holds back the first task whose deal's status write
    is still queued, and every task after it (order kept); the final flush sends status before task."""
    sent = Recorder()
    buffer = WriteBuffer(sent, 3, 2)
    pending = PendingPage(Cursor(NOW, "D5"), [])
    buffer.add(
        pending,
        WritePlan(
            tuple(status(d) for d in ("D0", "D1", "D2", "D3")),
            tuple(task(d) for d in ("D0", "D1", "D3", "D5")),
        ),
    )
    first = buffer.flush()
    assert (ids(first.plan.status_writes), ids(first.plan.task_writes)) == (["D0", "D1", "D2"], ["D0", "D1"])
    assert first.done == []
    last = buffer.flush(final=True)
    assert (ids(last.plan.status_writes), ids(last.plan.task_writes)) == (["D3"], ["D3", "D5"])
    assert last.done == [pending] and buffer.empty


def test_a_non_final_flush_sends_only_full_task_batches() -> None:
    """Tasks cleared to go (their statuses sent) are still cut down to whole batches until the final flush:
    3 cleared tasks with a batch of 2 send 2, the third waits."""
    sent = Recorder()
    buffer = WriteBuffer(sent, 10, 2)
    deals = [f"D{n}" for n in range(13)]
    buffer.add(
        PendingPage(Cursor(NOW, "D12"), []),
        WritePlan(tuple(status(d) for d in deals), tuple(task(d) for d in ("D0", "D1", "D2", "D10"))),
    )
    first = buffer.flush()
    assert len(first.plan.status_writes) == 10
    assert ids(first.plan.task_writes) == ["D0", "D1"]
    last = buffer.flush(final=True)
    assert ids(last.plan.task_writes) == ["D2", "D10"]
    assert ids(last.plan.status_writes) == ["D10", "D11", "D12"]


def test_no_task_is_ever_sent_before_its_status_write() -> None:
    """Over a run of pages with uneven batch sizes, each deal's task goes in the same call as its status
    write or a later one, and nothing is sent twice or lost."""
    sent = Recorder()
    buffer = WriteBuffer(sent, 20, 3)
    for index in range(6):
        pending, plan = page(11, index * 11, 5 + index)
        buffer.add(pending, plan)
        if buffer.ready():
            buffer.flush()
    buffer.flush(final=True)
    status_call = {w.deal_id: n for n, plan in enumerate(sent.calls) for w in plan.status_writes}
    task_call = {w.deal_id: n for n, plan in enumerate(sent.calls) for w in plan.task_writes}
    assert len(status_call) == 66 and len(task_call) == sum(5 + i for i in range(6))
    assert all(task_call[d] >= status_call[d] for d in task_call)
    assert sum(len(p.task_writes) for p in sent.calls) == len(task_call)


def complete(deal: str, key: str | None = None) -> TaskWrite:
    return TaskWrite(
        TaskAction.COMPLETE, key or f"k-{deal}", deal, "005", "s", "d", date(2026, 12, 2), task_id=f"T-{deal}"
    )


def test_creates_and_writes_to_existing_tasks_fill_batches_of_their_own() -> None:
    """Pages of 100 deals, each with 43 new tasks and 57 completions (an event run's burst): every task call
    but the last of each kind carries a full batch of one kind, 43 + 57 calls for 10,000 deals, not 100 of
    each half full."""
    sent = Recorder()
    buffer = WriteBuffer(sent, 100, 100)
    done: list[PendingPage] = []
    for index in range(100):
        deals = [f"D{index * 100 + i}" for i in range(100)]
        pending = PendingPage(Cursor(NOW, deals[-1]), [])
        tasks = tuple(task(d) for d in deals[:43]) + tuple(complete(d) for d in deals[43:])
        buffer.add(pending, WritePlan(tuple(status(d) for d in deals), tasks))
        if buffer.ready():
            done.extend(buffer.flush().done)
    done.extend(buffer.flush(final=True).done)
    creates = sum(1 for p in sent.calls for w in p.task_writes if w.action is TaskAction.CREATE)
    completes = sum(1 for p in sent.calls for w in p.task_writes if w.action is TaskAction.COMPLETE)
    assert (creates, completes) == (4300, 5700)
    per_call = [
        (
            sum(w.action is TaskAction.CREATE for w in p.task_writes),
            sum(w.action is TaskAction.COMPLETE for w in p.task_writes),
        )
        for p in sent.calls
    ]
    create_calls = [c for c, _ in per_call if c]
    complete_calls = [u for _, u in per_call if u]
    assert create_calls == [100] * 43 and complete_calls == [100] * 57
    assert len(done) == 100 and buffer.empty


def test_a_create_waits_while_a_write_to_its_deal_s_existing_task_is_queued() -> None:
    """A deal whose task under a retired key is completed and a fresh one created: the create never goes
    in a call before the completion; creates of other deals before it go in full batches meanwhile."""
    sent = Recorder()
    buffer = WriteBuffer(sent, 10, 2)
    pending = PendingPage(Cursor(NOW, "D4"), [])
    buffer.add(
        pending,
        WritePlan((), (complete("D3", "old-D3"), task("D1"), task("D2"), task("D3"), task("D4"))),
    )
    first = buffer.flush()
    assert [(w.action.value, w.deal_id) for w in first.plan.task_writes] == [
        ("create", "D1"),
        ("create", "D2"),
    ]
    assert first.done == []
    last = buffer.flush(final=True)
    assert [(w.action.value, w.deal_id) for w in last.plan.task_writes] == [
        ("complete", "D3"), ("create", "D3"), ("create", "D4")
    ]  # fmt: skip
    assert last.done == [pending] and buffer.empty
