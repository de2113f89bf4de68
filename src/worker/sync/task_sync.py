"""The worker's side of "one open task per unqualified deal": read what the CRM holds, keep the ledger.

Per page, `TaskSync.facts` reads the tasks the CRM holds for the page's deals by sync key, in batches
(`Connector.find_tasks`), and pairs each with the ledger's record; the planner decides from those. The keys
looked up are every key the ledger knows for a deal of the page (a task created under a pre-0.2 key, or
a create whose answer was lost), plus the key of each deal whose status some install of bant-sync wrote
and that is or was unqualified (`may_have_task`), so a task is found whatever happened to the ledger.

`TaskSync.apply` sends the task writes and keeps the ledger: an `intended` row before each create (a
create whose answer is lost is then looked up by every later run, even once its deal has qualified), the
CRM's id, state and the verdict written after each write that landed. A create refused because its key
already exists (another install, a race) means "it exists": it is looked up and reconciled in place.
The ledger is never trusted over the CRM: it is corrected to what each lookup found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import structlog

from connectors.model import CrmTask, OutcomeKind, RowOutcome, TaskAction, TaskField, TaskWrite, WritePlan
from connectors.protocol import Connector
from connectors.task_keys import sync_key
from rules import Assessment, Deal, Status
from worker.state.ledger import LedgerEntry, LedgerState, StoreLedger
from worker.sync.planner import PlanContext, TaskFacts, plan_task

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a task write carries into the ledger: the deal's status and missing criteria."""

    status: str
    missing: tuple[str, ...]


class TaskSync:
    """One run's task reconciliation for one connection. `dry_run` reads but never writes the ledger."""

    def __init__(self, connector: Connector, ledger: StoreLedger, *, dry_run: bool = False) -> None:
        self.connector = connector
        self.ledger = ledger
        self.dry_run = dry_run
        self.checked = 0
        """Task keys looked up in the CRM so far in this run."""
        self.verdicts: dict[str, Verdict] = {}
        """The verdict each planned write carries (by sync key), recorded in the ledger once it lands."""
        self._identity: str | None = None

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = self.connector.identity
        return self._identity

    def key(self, deal_id: str) -> str:
        return sync_key(self.identity, deal_id)

    def facts(self, deals: Sequence[Deal], assessments: Sequence[Assessment]) -> dict[str, TaskFacts]:
        """Each deal's task facts: the CRM's task under its key (or under a key the ledger knows for it)."""
        entries = self.ledger.entries_for(deal.id for deal in deals)
        wanted: list[str] = []
        for deal, assessment in zip(deals, assessments, strict=True):
            rows = entries.get(deal.id, [])
            if rows or may_have_task(deal, assessment):
                wanted.append(self.key(deal.id))
                wanted.extend(entry.sync_key for entry in rows)
        keys = sorted(set(wanted))
        self.checked += len(keys)
        found = self.connector.find_tasks(keys) if keys else {}
        self.correct_ledger(entries, found)
        facts: dict[str, TaskFacts] = {}
        for deal in deals:
            key = self.key(deal.id)
            known = {entry.sync_key: entry for entry in entries.get(deal.id, [])}
            crm = found.get(key)
            if crm is None:
                crm = next((found[k] for k in sorted(known) if k in found and "~" not in k), None)
            entry = known.get(crm.sync_key) if crm is not None else known.get(key)
            facts[deal.id] = TaskFacts(key, crm, entry)
        return facts

    def correct_ledger(self, entries: Mapping[str, list[LedgerEntry]], found: Mapping[str, CrmTask]) -> None:
        """Make the ledger agree with the CRM: a task that is gone is forgotten, an intended create the CRM
        holds is recorded open with its id. Open/completed is not copied from the CRM: the ledger's state
        says what bant-sync left the task as, which is how a task a person completed is told apart from one
        bant-sync completed."""
        if self.dry_run:
            return
        gone: list[str] = []
        landed: list[LedgerEntry] = []
        for entry in (e for rows in entries.values() for e in rows):
            task = found.get(entry.sync_key)
            if task is None:
                gone.append(entry.sync_key)
            elif entry.state == LedgerState.INTENDED or entry.task_id != task.task_id:
                state = LedgerState.OPEN if entry.state == LedgerState.INTENDED else entry.state
                landed.append(replace(entry, task_id=task.task_id, state=state))
        self.ledger.forget(gone)
        self.ledger.record(landed)
        if gone or landed:
            intended = {
                e.sync_key for rows in entries.values() for e in rows if e.state == LedgerState.INTENDED
            }
            creates_landed = sum(1 for e in landed if e.sync_key in intended)
            log.info(
                "task ledger corrected",
                forgotten=len(gone),
                creates_landed=creates_landed,
                relinked=len(landed) - creates_landed,
            )
            log.debug(
                "task ledger corrected: deals",
                forgotten_keys=gone,
                landed_deals=sorted({e.deal_id for e in landed}),
            )

    def plan(
        self,
        deals: Sequence[Deal],
        assessments: Sequence[Assessment],
        facts: Mapping[str, TaskFacts],
        ctx: PlanContext,
    ) -> list[TaskWrite]:
        writes: list[TaskWrite] = []
        for deal, assessment in zip(deals, assessments, strict=True):
            planned = plan_task(deal, assessment, facts[deal.id], ctx)
            for write in planned:
                self.verdicts[write.sync_key] = Verdict(assessment.status.value, assessment.missing)
            writes.extend(planned)
        _log_planned(writes, facts, self.dry_run)
        return writes

    def apply(self, writes: Sequence[TaskWrite]) -> list[RowOutcome]:
        """Send task writes (by-id writes first, so a retired key is free before its fresh create) and keep
        the ledger; one RowOutcome per write, in order."""
        if not writes:
            return []
        order = sorted(range(len(writes)), key=lambda i: writes[i].action is TaskAction.CREATE)
        creates = [writes[i] for i in order if writes[i].action is TaskAction.CREATE]
        self.ledger.record(
            [
                LedgerEntry(w.sync_key, w.deal_id, None, LedgerState.INTENDED, *self._verdict(w.sync_key))
                for w in creates
            ]
        )
        sent = [writes[i] for i in order]
        outcomes = dict(zip(order, self.connector.apply(WritePlan(task_writes=tuple(sent))), strict=True))
        retry = [i for i in order if _refused_create(writes[i], outcomes[i])]
        if retry:
            settled = self._reconcile_refused({i: writes[i] for i in retry})
            outcomes.update(settled)
            log.info(
                "task creates refused as existing",
                refused=len(retry),
                settled=sum(1 for o in settled.values() if o.kind is OutcomeKind.WRITTEN),
                not_found=len(retry) - len(settled),
            )
            log.debug(
                "task creates refused as existing: deals", deals=sorted({writes[i].deal_id for i in retry})
            )
        self._record([(writes[i], outcomes[i]) for i in order])
        return [outcomes[i] for i in range(len(writes))]

    def _reconcile_refused(self, creates: Mapping[int, TaskWrite]) -> dict[int, RowOutcome]:
        """Creates the CRM refused: where the key already holds a task, update or reopen that one."""
        found = self.connector.find_tasks(sorted({w.sync_key for w in creates.values()}))
        again: dict[int, TaskWrite] = {}
        for index, write in creates.items():
            task = found.get(write.sync_key)
            if task is None:
                continue
            fields = frozenset({TaskField.SUBJECT, TaskField.DESCRIPTION, TaskField.PRIORITY, TaskField.DUE})
            action = TaskAction.UPDATE if task.is_open else TaskAction.REOPEN
            again[index] = replace(write, action=action, task_id=task.task_id, fields=fields)
        if not again:
            return {}
        indexes = sorted(again)
        outcomes = self.connector.apply(WritePlan(task_writes=tuple(again[i] for i in indexes)))
        return dict(zip(indexes, outcomes, strict=True))

    def _verdict(self, key: str) -> tuple[tuple[str, ...], str | None]:
        verdict = self.verdicts.get(key)
        return (verdict.missing, verdict.status) if verdict is not None else ((), None)

    def _record(self, done: Iterable[tuple[TaskWrite, RowOutcome]]) -> None:
        rows: list[LedgerEntry] = []
        adopted: list[str] = []
        for write, outcome in done:
            if outcome.kind is OutcomeKind.REJECTED or outcome.kind is OutcomeKind.INVALID:
                continue
            task_id = outcome.task_id or write.task_id
            if write.action is TaskAction.COMPLETE:
                if task_id is not None:
                    rows.append(LedgerEntry(write.sync_key, write.deal_id, task_id, LedgerState.COMPLETED))
                continue
            if "~" in write.sync_key or task_id is None:
                continue
            missing, status = self._verdict(write.sync_key)
            if write.action is TaskAction.UPDATE and TaskField.SUBJECT not in write.fields:
                previous = self.ledger.lookup([write.sync_key]).get(write.sync_key)
                if previous is not None:
                    missing, status = previous.missing, previous.status
            rows.append(
                LedgerEntry(write.sync_key, write.deal_id, task_id, LedgerState.OPEN, missing, status)
            )
            if TaskField.KEY in write.fields:
                adopted.append(write.deal_id)
        self.ledger.record(rows)
        if adopted:
            stale = [
                entry.sync_key
                for entries in self.ledger.entries_for(adopted).values()
                for entry in entries
                if entry.sync_key != self.key(entry.deal_id)
            ]
            self.ledger.forget(stale)


def _log_planned(writes: Sequence[TaskWrite], facts: Mapping[str, TaskFacts], dry_run: bool) -> None:
    """One INFO line for a page whose task plan repairs something: a task the ledger knew that the CRM no
    longer holds (created again), a completed task reopened, a task adopted under its current key."""
    recreated = [
        w.deal_id
        for w in writes
        if w.action is TaskAction.CREATE
        and (f := facts.get(w.deal_id)) is not None
        and f.entry is not None
        and f.crm is None
    ]
    reopened = [w.deal_id for w in writes if w.action is TaskAction.REOPEN]
    adopted = [w.deal_id for w in writes if TaskField.KEY in w.fields]
    if not (recreated or reopened or adopted):
        return
    log.info(
        "task reconciliation",
        recreated=len(recreated),
        reopened=len(reopened),
        adopted_keys=len(adopted),
        dry_run=dry_run,
    )
    log.debug("task reconciliation: deals", recreated=recreated, reopened=reopened, adopted_keys=adopted)


FLAGGED_VALUES = frozenset(status.value for status in Status if status.is_flagged)


def may_have_task(deal: Deal, assessment: Assessment) -> bool:
    """Whether a deal the ledger knows nothing of may have a task worth looking up: it needs one now (or is
    snoozed), or shows an unqualified or snoozed status (its task, if any, must be completed) — and some
    install of bant-sync wrote its status before. A task is only ever created after its deal's status
    write landed, so a deal whose status field is empty has none (and should a person have blanked it,
    the create that follows finds the existing task: an upsert by key on Salesforce, a refused duplicate
    key, looked up, on HubSpot). This keeps a first run from looking up thousands of tasks that cannot
    exist."""
    shown = deal.flags.status
    if not shown:
        return False
    return assessment.status.is_flagged or shown in FLAGGED_VALUES


def _refused_create(write: TaskWrite, outcome: RowOutcome) -> bool:
    return (
        write.action is TaskAction.CREATE
        and outcome.kind is OutcomeKind.REJECTED
        and outcome.code not in {"UNCERTAIN"}
    )
