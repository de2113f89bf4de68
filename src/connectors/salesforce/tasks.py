"""Follow-up tasks on Salesforce, keyed by `BANT_Sync_Key__c`: found by key, created, updated, completed.

The connector keeps no state about tasks: the worker reads them with `find_tasks`, decides, and sends
TaskWrites (worker.sync.task_sync). Activity custom fields can carry the External ID attribute
(Salesforce Object Reference, "Custom Fields"; in metadata they are defined on `Activity` and surface on
Task), so creates are upserted by key through `PATCH composite/sobjects/Task/BANT_Sync_Key__c` (REST API
Developer Guide, "Upsert Multiple Records"): a retry after an uncertain outcome updates the task the first
attempt made instead of duplicating it. When describe shows the key is not an External ID, a create is
sent once (`POST composite/sobjects`, never retried): an uncertain answer is a rejection that the next
run's lookup by key settles.

Lookups are SOQL over the key, 200 keys per query: a query travels in the GET URL, and Salesforce refuses
URIs over 16,384 bytes (REST API Developer Guide, "Limits"), which a page of 2,000 keys would exceed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from simple_salesforce.format import format_soql

from connectors.errors import TransientError
from connectors.fieldtable import TaskStates, TaskTable, build_task_table, read_task, write_task
from connectors.model import CrmTask, OutcomeKind, RowOutcome, TaskAction, TaskField, TaskWrite, WriteTarget
from connectors.salesforce.pull import CODECS
from connectors.salesforce.write import CHUNK, CollectionWriter, SaveResult

GONE = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "INVALID_ID_FIELD"})
"""A task someone deleted: nothing left to complete."""

STATES = TaskStates(
    field="Status",
    open="Not Started",
    completed="Completed",
    read_field="IsClosed",
    is_open=lambda closed: not closed,
)
"""Written: the standard Status values; read: IsClosed, true for every closed status an org defines."""


@lru_cache(maxsize=8)
def task_table(key_field: str) -> TaskTable:
    """Salesforce's task table: bant-sync's task fields -> Task fields, the key field the connection's."""
    names = {
        TaskField.SUBJECT: "Subject",
        TaskField.DESCRIPTION: "Description",
        TaskField.PRIORITY: "Priority",
        TaskField.DUE: "ActivityDate",
        TaskField.OWNER: "OwnerId",
        TaskField.KEY: key_field,
    }
    return build_task_table(names, CODECS, STATES)


def task_record(write: TaskWrite, key_field: str) -> dict[str, Any]:
    """The Task record one write sends: the table's fields, the deal it is about on a create, its id on
    every other action."""
    record: dict[str, Any] = {"attributes": {"type": "Task"}, **write_task(write, task_table(key_field))}
    if write.action is TaskAction.CREATE:
        record["WhatId"] = write.deal_id
    elif write.task_id:
        record["id"] = write.task_id
    return record


def _outcome(write: TaskWrite, result: SaveResult, task_id: str | None = None) -> RowOutcome:
    if result.success:
        return RowOutcome(
            write.deal_id,
            WriteTarget.TASK,
            OutcomeKind.WRITTEN,
            task_id=result.id or task_id,
            sync_key=write.sync_key,
        )
    kind = OutcomeKind.REJECTED
    if write.action is TaskAction.COMPLETE and result.code in GONE:
        kind = OutcomeKind.UNCHANGED
    return RowOutcome(
        write.deal_id, WriteTarget.TASK, kind, result.code, result.message, task_id, write.sync_key
    )


class TaskWriter:
    """Sends one batch of TaskWrites: creates by key, everything else by task id."""

    def __init__(self, writer: CollectionWriter, key_field: str, external_id: bool) -> None:
        self.writer = writer
        self.key_field = key_field
        self.external_id = external_id

    def apply(self, writes: Sequence[TaskWrite]) -> list[RowOutcome]:
        """One RowOutcome per write, in order."""
        creates = [i for i, w in enumerate(writes) if w.action is TaskAction.CREATE]
        by_id = [i for i, w in enumerate(writes) if w.action is not TaskAction.CREATE]
        outcomes: dict[int, RowOutcome] = {}
        if by_id:
            records = [task_record(writes[i], self.key_field) for i in by_id]
            results = self.writer.save("composite/sobjects", "PATCH", records)
            for index, result in zip(by_id, results, strict=True):
                outcomes[index] = _outcome(writes[index], result, writes[index].task_id)
        if creates:
            records = [task_record(writes[i], self.key_field) for i in creates]
            for index, result in zip(creates, self._create(records), strict=True):
                outcomes[index] = _outcome(writes[index], result)
        return [outcomes[i] for i in range(len(writes))]

    def _create(self, records: list[dict[str, Any]]) -> list[SaveResult]:
        if self.external_id:
            return self.writer.save(f"composite/sobjects/Task/{self.key_field}", "PATCH", records)
        try:
            with self.writer.client.single_attempt():
                return self.writer.save("composite/sobjects", "POST", records)
        except TransientError as exc:
            uncertain = SaveResult(False, code="UNCERTAIN", message=f"{exc}; looked up by key next run")
            return [uncertain] * len(records)


def find_tasks(writer: CollectionWriter, keys: Sequence[str], key_field: str) -> dict[str, CrmTask]:
    """The tasks Salesforce holds under these sync keys (one query per 200 keys; the oldest wins a tie)."""
    table = task_table(key_field)
    found: dict[str, CrmTask] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), CHUNK):
        soql = format_soql(
            "SELECT Id, {:literal} FROM Task WHERE {:literal} IN {} ORDER BY CreatedDate ASC",
            ", ".join(table.read_names),
            key_field,
            unique[start : start + CHUNK],
        )
        for record in writer.client.query(soql):
            task = read_task(record.get, table, str(record["Id"]))
            found.setdefault(task.sync_key, task)
    return found
