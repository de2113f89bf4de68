"""Follow-up tasks on Salesforce: exactly one per deal, keyed by `BANT_Sync_Key__c`.

Activity custom fields can carry the External ID attribute. Salesforce Object Reference, "Custom Fields"
(developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/custom_fields.htm) lists
Task and Event among the standard objects that support custom fields, and its "External ID Attribute on
Custom Fields" section allows the attribute on any custom text, number or email field. In metadata such
fields are defined on the `Activity` object and surface on Task (`objects/Activity/fields/…`; a file under
`objects/Task/fields/` is refused by the Metadata API). So tasks are upserted by key through
`PATCH composite/sobjects/Task/BANT_Sync_Key__c` (REST API Developer Guide, "Upsert Multiple Records"):
a retry after an uncertain outcome updates the task the first attempt made instead of duplicating it.

When describe shows the key field is not an External ID (an admin created it without the attribute), the
connector falls back to the ledger: look tasks up by key first, update what exists, and create the rest
once (no blind retry of a create), recording intent and confirmation in the worker's TaskLedger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from simple_salesforce.format import format_soql

from connectors.errors import TransientError
from connectors.model import OutcomeKind, RowOutcome, TaskAction, TaskWrite, WriteTarget
from connectors.registry import Confirmation, Intent, TaskLedger
from connectors.salesforce.write import CHUNK, CollectionWriter, SaveResult

OPEN, COMPLETED = "Not Started", "Completed"
OPEN_STATE, COMPLETED_STATE = "open", "completed"
GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "INVALID_ID_FIELD"})
"""Ledger states (worker.state.ledger)."""


def task_record(write: TaskWrite, key_field: str, *, with_key: bool = True) -> dict[str, Any]:
    """The Task fields bant-sync owns. An update leaves Status alone, so a rep's "In Progress" stays."""
    record: dict[str, Any] = {"attributes": {"type": "Task"}}
    if with_key:
        record[key_field] = write.sync_key
    record.update(
        WhatId=write.deal_id,
        Subject=write.subject,
        Description=write.description,
        ActivityDate=write.due.isoformat(),
        Priority=write.priority,
    )
    if write.owner_id:
        record["OwnerId"] = write.owner_id
    if write.action is TaskAction.CREATE:
        record["Status"] = OPEN
    elif write.action is TaskAction.COMPLETE:
        record["Status"] = COMPLETED
    return record


def _outcome(write: TaskWrite, result: SaveResult, task_id: str | None = None) -> RowOutcome:
    if result.success:
        extra = {"created": str(result.created).lower()} if result.created is not None else {}
        return RowOutcome(
            write.deal_id,
            WriteTarget.TASK,
            OutcomeKind.WRITTEN,
            task_id=result.id or task_id,
            sync_key=write.sync_key,
            extra=extra,
        )
    return RowOutcome(
        write.deal_id,
        WriteTarget.TASK,
        OutcomeKind.REJECTED,
        result.code,
        result.message,
        task_id=task_id,
        sync_key=write.sync_key,
    )


class TaskWriter:
    """Writes one plan's tasks and keeps the worker's TaskLedger true: intent before a create, the CRM id
    and open/completed state after every write that succeeded (the planner reads open tasks from it)."""

    def __init__(
        self, writer: CollectionWriter, key_field: str, ledger: TaskLedger, external_id: bool
    ) -> None:
        self.writer = writer
        self.key_field = key_field
        self.ledger = ledger
        self.external_id = external_id

    def apply(self, writes: Sequence[TaskWrite], missing: Mapping[str, tuple[str, ...]]) -> list[RowOutcome]:
        """One RowOutcome per write, in order. `missing` (deal id -> criteria) is what the ledger records."""
        if not writes:
            return []
        known = self.ledger.lookup(write.sync_key for write in writes)
        self.ledger.intend(
            [
                Intent(w.sync_key, w.deal_id, missing.get(w.deal_id, ()))
                for w in writes
                if w.action is TaskAction.CREATE or w.sync_key not in known
            ]
        )
        by_id = [i for i, w in enumerate(writes) if w.action is TaskAction.COMPLETE and w.task_id]
        keyed = [i for i in range(len(writes)) if i not in set(by_id)]
        outcomes: dict[int, RowOutcome] = dict(
            zip(by_id, self._complete([writes[i] for i in by_id]), strict=True)
        )
        rest = [writes[i] for i in keyed]
        if rest:
            done = self._upsert(rest) if self.external_id else self._reconcile_then_write(rest)
            outcomes.update(zip(keyed, done, strict=True))
        ordered = [outcomes[i] for i in range(len(writes))]
        self.ledger.confirm(
            [
                Confirmation(
                    write.sync_key,
                    outcome.task_id,
                    COMPLETED_STATE if write.action is TaskAction.COMPLETE else OPEN_STATE,
                    missing.get(write.deal_id, ()),
                )
                for write, outcome in zip(writes, ordered, strict=True)
                if outcome.kind is not OutcomeKind.REJECTED and outcome.task_id
            ]
        )
        return ordered

    def _complete(self, writes: Sequence[TaskWrite]) -> list[RowOutcome]:
        """Complete known tasks by id, touching only Status: the rep's subject and notes stay as they are.
        A task someone deleted counts as done (nothing left to complete)."""
        if not writes:
            return []
        records = [{"attributes": {"type": "Task"}, "id": w.task_id, "Status": COMPLETED} for w in writes]
        results = self.writer.save("composite/sobjects", "PATCH", records)
        outcomes = []
        for write, result in zip(writes, results, strict=True):
            if not result.success and result.code in GONE:
                outcomes.append(
                    RowOutcome(
                        write.deal_id,
                        WriteTarget.TASK,
                        OutcomeKind.UNCHANGED,
                        result.code,
                        result.message,
                        task_id=write.task_id,
                        sync_key=write.sync_key,
                    )
                )
            else:
                outcomes.append(_outcome(write, result, write.task_id))
        return outcomes

    def _upsert(self, writes: Sequence[TaskWrite]) -> list[RowOutcome]:
        """Create, update or complete in one upsert per 200, keyed by the sync key."""
        records = [task_record(w, self.key_field) for w in writes]
        results = self.writer.save(f"composite/sobjects/Task/{self.key_field}", "PATCH", records)
        return [_outcome(w, r) for w, r in zip(writes, results, strict=True)]

    def _reconcile_then_write(self, writes: Sequence[TaskWrite]) -> list[RowOutcome]:
        """Fallback without an External ID: find tasks by key, update what exists, create the rest once."""
        existing = find_tasks_by_key(self.writer, [w.sync_key for w in writes], self.key_field)
        outcomes: dict[int, RowOutcome] = {}
        updates: list[tuple[int, TaskWrite, str]] = []
        creates: list[tuple[int, TaskWrite]] = []
        for index, write in enumerate(writes):
            task_id = existing.get(write.sync_key) or write.task_id
            if task_id:
                updates.append((index, write, task_id))
            elif write.action is TaskAction.COMPLETE:
                outcomes[index] = RowOutcome(
                    write.deal_id, WriteTarget.TASK, OutcomeKind.UNCHANGED, sync_key=write.sync_key
                )
            else:
                creates.append((index, write))
        if updates:
            records = [{**task_record(w, self.key_field, with_key=False), "id": t} for _, w, t in updates]
            results = self.writer.save("composite/sobjects", "PATCH", records)
            for (index, write, task_id), result in zip(updates, results, strict=True):
                outcomes[index] = _outcome(write, result, task_id)
        if creates:
            records = [task_record(w, self.key_field) for _, w in creates]
            try:
                results = self.writer.save("composite/sobjects", "POST", records, retry=False)
            except TransientError as exc:
                uncertain = SaveResult(False, code="UNCERTAIN", message=f"{exc}; reconciled by key next run")
                results = [uncertain] * len(creates)
            for (index, write), result in zip(creates, results, strict=True):
                outcomes[index] = _outcome(write, result)
        return [outcomes[i] for i in range(len(writes))]


def find_tasks_by_key(writer: CollectionWriter, keys: Sequence[str], key_field: str) -> dict[str, str]:
    """Task id by sync key, for the keys that already have a task (one query per 200 keys)."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), CHUNK):
        soql = format_soql(
            "SELECT Id, {:literal} FROM Task WHERE {:literal} IN {} ORDER BY CreatedDate ASC",
            key_field,
            key_field,
            list(keys[start : start + CHUNK]),
        )
        for record in writer.client.query(soql):
            found.setdefault(str(record[key_field]), str(record["Id"]))
    return found
