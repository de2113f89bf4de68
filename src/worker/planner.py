"""Diff before write: turn one page's assessments into the writes that change something, and nothing else.

A status write goes out only when the deal's output fields differ from the assessment (status, missing,
score, flagged-since); checked-at rides along with a real change. Tasks: exactly one open follow-up task per
unqualified deal — created when the deal first needs qualification, updated in place when what is missing
(or the status) changes, completed when the deal qualifies or drops out of scope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from connectors.model import StatusWrite, TaskAction, TaskWrite, WritePlan
from connectors.registry import LedgerEntry
from connectors.tasks import due_date, sync_key, task_description, task_subject
from rules import Assessment, Deal


@dataclass(frozen=True, slots=True)
class PlanContext:
    connection: str
    today: date
    now: datetime
    task_due_business_days: int


def status_differs(deal: Deal, assessment: Assessment) -> bool:
    """True when the CRM shows something other than this assessment in bant-sync's output fields."""
    flags = deal.flags
    return (
        flags.status != assessment.status.value
        or tuple(flags.missing or ()) != assessment.missing
        or flags.score != assessment.score
        or deal.flagged_since != assessment.flagged_since
    )


def _task(
    action: TaskAction, deal: Deal, assessment: Assessment, ctx: PlanContext, task_id: str | None
) -> TaskWrite:
    status = assessment.status.value
    return TaskWrite(
        action=action,
        sync_key=sync_key(ctx.connection, deal.id),
        deal_id=deal.id,
        owner_id=deal.owner_id,
        subject=task_subject(deal.name, assessment.missing, status),
        description=task_description(deal.name, assessment.missing, assessment.reasons, status),
        due=due_date(ctx.today, ctx.task_due_business_days),
        priority="High" if assessment.is_poc or status == "qualify_out" else "Normal",
        task_id=task_id,
    )


def plan_task(
    deal: Deal, assessment: Assessment, open_task: LedgerEntry | None, ctx: PlanContext
) -> TaskWrite | None:
    """The one task change this deal needs, if any."""
    if assessment.status.is_unqualified:
        if open_task is None:
            return _task(TaskAction.CREATE, deal, assessment, ctx, None)
        if (
            deal.flags.status != assessment.status.value
            or tuple(deal.flags.missing or ()) != assessment.missing
        ):
            return _task(TaskAction.UPDATE, deal, assessment, ctx, open_task.task_id)
        return None
    if open_task is not None:
        return _task(TaskAction.COMPLETE, deal, assessment, ctx, open_task.task_id)
    return None


def plan_page(
    deals: Sequence[Deal],
    assessments: Sequence[Assessment],
    open_tasks: Mapping[str, LedgerEntry],
    ctx: PlanContext,
) -> WritePlan:
    """Every write one page needs, status writes first (they never race the task writes of a deal)."""
    status_writes: list[StatusWrite] = []
    task_writes: list[TaskWrite] = []
    for deal, assessment in zip(deals, assessments, strict=True):
        if status_differs(deal, assessment):
            status_writes.append(
                StatusWrite(
                    deal_id=deal.id,
                    status=assessment.status,
                    missing=assessment.missing,
                    score=assessment.score,
                    checked_at=ctx.now,
                    flagged_since=assessment.flagged_since,
                )
            )
        task = plan_task(deal, assessment, open_tasks.get(deal.id), ctx)
        if task is not None:
            task_writes.append(task)
    return WritePlan(tuple(status_writes), tuple(task_writes))


def plan_closing(orphans: Mapping[str, LedgerEntry], ctx: PlanContext) -> WritePlan:
    """Complete the open tasks of deals a full sweep no longer sees (closed, deleted, or out of the query)."""
    writes = tuple(
        TaskWrite(
            action=TaskAction.COMPLETE,
            sync_key=entry.sync_key,
            deal_id=deal_id,
            owner_id=None,
            subject=task_subject(None, entry.missing),
            description="The deal is closed or no longer open: bant-sync completed this follow-up.",
            due=ctx.today,
            task_id=entry.task_id,
        )
        for deal_id, entry in sorted(orphans.items())
    )
    return WritePlan((), writes)
