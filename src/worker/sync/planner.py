"""Diff before write: turn one page's assessments, and what the CRM holds, into the writes that change
something, and nothing else. Pure: no I/O, time passed in.

A status write goes out only when the deal's output fields differ from the assessment (status, missing,
score, flagged-since); checked-at rides along with a real change.

Tasks are reconciled, not replayed: exactly one open follow-up task per unqualified deal, decided against
the task the CRM holds under the deal's sync key (`CrmTask`, None when there is none) and the ledger's
record of the verdict bant-sync last wrote into it.

- unqualified, no task: create it;
- unqualified, task open: rewrite subject, body and priority only when the verdict (status, missing
  criteria) changed since bant-sync last wrote it, so a person's own edits are not fought over; an
  escalation (the deal turned `qualify_out`, or a POC) also raises the priority and moves the due date;
- unqualified, task completed: if bant-sync completed it (the deal had qualified), reopen it; if a person
  did, follow `completed_tasks`: `reopen` (default) with a first line saying what is still missing,
  `new_task` (retire its key and create a fresh task) or `leave` (an escalation reopens it regardless);
- qualified or not evaluated, task open: complete it;
- snoozed (a valid snooze, rules.snooze), task open: complete it with a note saying until when, why and who
  snoozed; when the snooze ends and the deal is still unqualified, bant-sync reopens the task it completed.
An ignored or ended snooze is a change of verdict: the task is rewritten to say why.
A task found under a pre-0.2 key (named after the connection) is adopted: re-keyed in the same write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from connectors.model import (
    CONTENT_FIELDS,
    CrmTask,
    StatusWrite,
    TaskAction,
    TaskField,
    TaskWrite,
    WritePlan,
)
from connectors.task_keys import retired_key
from rules import Assessment, Deal, Status
from worker.state.ledger import LedgerEntry, LedgerState
from worker.sync.follow_up import (
    due_date,
    follow_up_description,
    follow_up_subject,
    reasons_text,
    snooze_line,
    snoozed_description,
)

ESCALATIONS = frozenset({"qualify_out", "poc_unqualified"})


@dataclass(frozen=True, slots=True)
class PlanContext:
    today: date
    now: datetime
    task_due_business_days: int
    completed_tasks: str = "reopen"
    field_names: Mapping[str, str] = field(default_factory=dict)
    people: Mapping[str, str] = field(default_factory=dict)
    """CRM user id -> name, for saying who snoozed a deal (the connection's cached owners)."""


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What is known of one deal's task before deciding: its key, the CRM's task (under that key, or
    under an older key to adopt), and the ledger's record of it."""

    key: str
    crm: CrmTask | None = None
    entry: LedgerEntry | None = None

    @property
    def adopting(self) -> bool:
        return self.crm is not None and self.crm.sync_key != self.key


def status_differs(deal: Deal, assessment: Assessment) -> bool:
    """True when the CRM shows something other than this assessment in bant-sync's output fields."""
    flags = deal.flags
    return (
        flags.status != assessment.status.value
        or tuple(flags.missing or ()) != assessment.missing
        or flags.score != assessment.score
        or deal.flagged_since != assessment.flagged_since
        or _shown_reasons(flags.reasons) != reasons_text(assessment)
    )


def _shown_reasons(reasons: str | None) -> str:
    return (reasons or "").replace("\r\n", "\n").strip()


def _priority(assessment: Assessment) -> str:
    return "High" if assessment.is_poc or assessment.status.value == "qualify_out" else "Normal"


def _write(
    action: TaskAction,
    deal: Deal,
    assessment: Assessment,
    ctx: PlanContext,
    facts: TaskFacts,
    fields: frozenset[TaskField] = frozenset(),
    *,
    reopened: bool = False,
) -> TaskWrite:
    status = assessment.status.value
    gaps = assessment.gaps
    snooze = assessment.snooze
    if assessment.status is Status.SNOOZED and snooze is not None:
        by = snooze.by
        description = snoozed_description(deal.name, snooze, ctx.people.get(by, by) if by else None)
    else:
        description = follow_up_description(
            deal.name, gaps, status, ctx.field_names, reopened, assessment.snooze
        )
    return TaskWrite(
        action=action,
        sync_key=facts.key,
        deal_id=deal.id,
        owner_id=deal.owner_id,
        subject=follow_up_subject(deal.name, gaps, status),
        description=description,
        due=due_date(ctx.today, ctx.task_due_business_days),
        priority=_priority(assessment),
        task_id=facts.crm.task_id if facts.crm is not None else None,
        fields=fields,
    )


def _last_verdict(deal: Deal, facts: TaskFacts) -> tuple[str | None, tuple[str, ...] | None]:
    """The verdict the task was last written with: the ledger's, else (a pre-0.2 row, or a task the ledger
    never saw) what the deal showed before this run."""
    entry = facts.entry
    if entry is not None and facts.crm is not None and entry.task_id == facts.crm.task_id:
        return entry.status or deal.flags.status, entry.missing
    return deal.flags.status, deal.flags.missing


def plan_task(deal: Deal, assessment: Assessment, facts: TaskFacts, ctx: PlanContext) -> list[TaskWrite]:
    """The task writes this deal needs (none, one, or a retire-and-create pair). A task found under an
    older key is re-keyed by whichever write touches it, or by a write of its own."""
    writes = _plan_task(deal, assessment, facts, ctx)
    crm = facts.crm
    if crm is None or not facts.adopting:
        return writes
    if any(w.task_id == crm.task_id and TaskField.KEY in w.fields for w in writes):
        return writes
    if any(w.task_id == crm.task_id for w in writes):
        return [
            replace(w, fields=w.fields | {TaskField.KEY}) if w.task_id == crm.task_id else w for w in writes
        ]
    rekey = _write(TaskAction.UPDATE, deal, assessment, ctx, facts, frozenset({TaskField.KEY}))
    return [rekey, *writes]


def _plan_task(deal: Deal, assessment: Assessment, facts: TaskFacts, ctx: PlanContext) -> list[TaskWrite]:
    crm = facts.crm
    rekey = frozenset({TaskField.KEY}) if facts.adopting else frozenset()
    if assessment.status is Status.SNOOZED:
        if crm is not None and crm.is_open:
            note = frozenset({TaskField.DESCRIPTION})
            return [_write(TaskAction.COMPLETE, deal, assessment, ctx, facts, note | rekey)]
        return []
    if not assessment.status.is_unqualified:
        if crm is not None and crm.is_open:
            return [_write(TaskAction.COMPLETE, deal, assessment, ctx, facts)]
        return []
    if crm is None:
        return [_write(TaskAction.CREATE, deal, assessment, ctx, facts)]
    status = assessment.status.value
    last_status, last_missing = _last_verdict(deal, facts)
    snooze_note = assessment.snooze.note if assessment.snooze is not None else None
    changed = (last_status, last_missing) != (status, assessment.missing) or (
        snooze_note != snooze_line(deal.flags.reasons)
    )
    escalated = status in ESCALATIONS and last_status != status
    if crm.is_open:
        fields = rekey
        if changed:
            fields |= CONTENT_FIELDS
        if escalated:
            fields |= CONTENT_FIELDS | {TaskField.DUE}
        return [_write(TaskAction.UPDATE, deal, assessment, ctx, facts, fields)] if fields else []
    reopen = CONTENT_FIELDS | {TaskField.DUE} | rekey
    entry = facts.entry
    we_completed = entry is not None and entry.task_id == crm.task_id and entry.state == LedgerState.COMPLETED
    policy = "reopen" if we_completed else ctx.completed_tasks
    if policy == "leave" and escalated:
        policy = "reopen"
    if policy == "reopen":
        return [_write(TaskAction.REOPEN, deal, assessment, ctx, facts, reopen, reopened=not we_completed)]
    if policy == "new_task":
        retire = TaskWrite(
            action=TaskAction.UPDATE,
            sync_key=retired_key(facts.key, crm.task_id),
            deal_id=deal.id,
            owner_id=None,
            subject="",
            description="",
            due=ctx.today,
            task_id=crm.task_id,
            fields=frozenset({TaskField.KEY}),
        )
        fresh = TaskFacts(facts.key, None, None)
        return [retire, _write(TaskAction.CREATE, deal, assessment, ctx, fresh)]
    return []


def plan_statuses(
    deals: Sequence[Deal], shown: Sequence[Deal], assessments: Sequence[Assessment], ctx: PlanContext
) -> tuple[StatusWrite, ...]:
    """The status writes of a page: `shown` are the deals as the CRM showed them (their flagged-since
    field included), `deals` as assessed (with bant-sync's own qualify-out clock)."""
    writes = []
    for deal, seen, assessment in zip(deals, shown, assessments, strict=True):
        if status_differs(seen, assessment):
            writes.append(
                StatusWrite(
                    deal_id=deal.id,
                    status=assessment.status,
                    missing=assessment.missing,
                    score=assessment.score,
                    checked_at=ctx.now,
                    flagged_since=assessment.flagged_since,
                    reasons=reasons_text(assessment),
                )
            )
    return tuple(writes)


def plan_page(
    deals: Sequence[Deal],
    assessments: Sequence[Assessment],
    facts: Mapping[str, TaskFacts],
    ctx: PlanContext,
    shown: Sequence[Deal] | None = None,
) -> WritePlan:
    """Every write one page needs, status writes first (they never race the task writes of a deal)."""
    task_writes: list[TaskWrite] = []
    for deal, assessment in zip(deals, assessments, strict=True):
        task_writes.extend(plan_task(deal, assessment, facts[deal.id], ctx))
    return WritePlan(plan_statuses(deals, shown or deals, assessments, ctx), tuple(task_writes))


def plan_closing(tasks: Mapping[str, CrmTask], deal_of: Mapping[str, str], ctx: PlanContext) -> WritePlan:
    """Complete the open tasks of deals a run no longer sees open (closed, deleted, or out of the query)."""
    writes = tuple(
        TaskWrite(
            action=TaskAction.COMPLETE,
            sync_key=key,
            deal_id=deal_of[key],
            owner_id=None,
            subject="",
            description="The deal is closed or no longer open: bant-sync completed this follow-up.",
            due=ctx.today,
            task_id=task.task_id,
        )
        for key, task in sorted(tasks.items())
        if task.is_open
    )
    return WritePlan((), writes)
