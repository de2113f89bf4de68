"""Follow-up tasks in HubSpot, keyed by the unique `bant_sync_key` task property: found, created, updated.

The connector keeps no state about tasks: the worker reads them with `find_tasks`, decides, and sends
TaskWrites (worker.sync.task_sync). A create is `tasks/batch/create` with the task->deal association in
the same call (https://developers.hubspot.com/docs/api/crm/tasks#create-tasks). HubSpot has no upsert
that also associates, so a create whose answer was lost (timeout, dropped connection, 5xx after send) is
never sent again blindly: before a retry the chunk's keys are looked up and only the tasks HubSpot does not
hold are re-sent. The lookup is `tasks/batch/read` with `idProperty` = the key property: unlike search it
does not lag recent writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from connectors.concurrency import map_in_parallel
from connectors.errors import TransientError
from connectors.fieldtable import TaskStates, TaskTable, build_task_table, read_task, write_task
from connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from connectors.hubspot.mapping import CODECS
from connectors.hubspot.write import (
    RowResult,
    batch_update,
    chunks,
    error_rows,
    missing_properties,
    read_results,
)
from connectors.model import CrmTask, OutcomeKind, RowOutcome, TaskAction, TaskField, TaskWrite, WriteTarget

STATES = TaskStates(
    field="hs_task_status",
    open="NOT_STARTED",
    completed="COMPLETED",
    read_field="hs_task_status",
    is_open=lambda status: status != "COMPLETED",
)


@lru_cache(maxsize=8)
def task_table(key_property: str) -> TaskTable:
    """HubSpot's task table: bant-sync's task fields -> task properties, the key property the connection's.
    A create is a to-do (`hs_task_type`)."""
    names = {
        TaskField.SUBJECT: "hs_task_subject",
        TaskField.DESCRIPTION: "hs_task_body",
        TaskField.PRIORITY: "hs_task_priority",
        TaskField.DUE: "hs_timestamp",
        TaskField.OWNER: "hubspot_owner_id",
        TaskField.KEY: key_property,
    }
    return build_task_table(names, CODECS, STATES, {"hs_task_type": "TODO"})


class TaskWriter:
    """Creates, updates, reopens and completes bant-sync tasks; `association_type_id` comes from preflight."""

    def __init__(self, client: HubSpotClient, key_property: str) -> None:
        self._client = client
        self._key = key_property
        self._table = task_table(key_property)
        self.association_type_id: int | None = None

    def properties(self, write: TaskWrite) -> dict[str, str]:
        """The task properties one write sets (`fieldtable.write_task` over HubSpot's task table)."""
        return write_task(write, self._table)

    def find(self, keys: Sequence[str]) -> dict[str, CrmTask]:
        """The tasks HubSpot holds under these keys (read-your-writes consistent), 100 keys per call."""
        return {
            key: read_task((record.get("properties") or {}).get, self._table, str(record["id"]))
            for key, record in self._read(keys).items()
        }

    def _read(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        wanted = list(self._table.read_names)
        for chunk in chunks(sorted(set(keys))):
            body = {
                "idProperty": self._key,
                "inputs": [{"id": key} for key in chunk],
                "properties": wanted,
                "propertiesWithHistory": [],
            }
            response = self._client.call_json(
                "other", "tasks_batch", "read", body, archived="false", expect="results"
            )
            for record in response.get("results") or []:
                key = (record.get("properties") or {}).get(self._key)
                if key:
                    found[key] = record
        return found

    def apply(self, writes: Sequence[TaskWrite]) -> list[RowOutcome]:
        """One RowOutcome per write, in order. Writes by task id go first, then creates by key, so a key a
        write retires is free before the create that takes it."""
        results: dict[str, RowOutcome] = {}
        by_id = [w for w in writes if w.action is not TaskAction.CREATE and w.task_id]
        if by_id:
            rows = [(str(w.task_id), self.properties(w)) for w in by_id]
            updated = batch_update(self._client, "tasks_batch", rows, "task")
            for write in by_id:
                result = updated[str(write.task_id)]
                if result.ok:
                    results[write.sync_key] = _outcome(write, OutcomeKind.WRITTEN, write.task_id)
                else:
                    results[write.sync_key] = _outcome(
                        write, OutcomeKind.REJECTED, write.task_id, result.code, result.message
                    )
        creates = [w for w in writes if w.action is TaskAction.CREATE]
        for created in map_in_parallel(
            self._create, list(chunks(creates)), self._client.settings.max_in_flight
        ):
            results.update(created)
        return [
            results.get(w.sync_key) or _outcome(w, OutcomeKind.INVALID, None, "NO_TASK_ID", "no task id")
            for w in writes
        ]

    def _create(self, chunk: Sequence[TaskWrite]) -> dict[str, RowOutcome]:
        if self.association_type_id is None:
            raise RuntimeError("preflight() must run before tasks are created (association type unknown)")
        by_key = {w.sync_key: w for w in chunk}
        done: dict[str, RowResult] = {}
        attempts = 0

        def attempt() -> None:
            """One try of the chunk, its requests sent once each (`single_attempt`): the retry is this
            function's, after a lookup of what the lost answer may have created."""
            nonlocal attempts
            attempts += 1
            with self._client.single_attempt():
                if attempts > 1:
                    for key, record in self._read([k for k in by_key if k not in done]).items():
                        done[key] = RowResult(True, record=record)
                todo = [w for key, w in by_key.items() if key not in done]
                if not todo:
                    return
                body = {"inputs": [self._create_input(w) for w in todo]}
                response = self._client.call_json("other", "tasks_batch", "create", body, expect="results")
            keys = [w.sync_key for w in todo]
            done.update(read_results(response, keys, lambda r: (r.get("properties") or {}).get(self._key)))

        try:
            self._client.policy.call(attempt)
        except TransientError as exc:
            for key in by_key:
                done.setdefault(key, RowResult(False, "UNCERTAIN", f"{exc}; looked up by key next run"))
        except HubSpotRequestError as exc:
            if exc.status != 400 or missing_properties(exc):
                raise
            done.update(self._narrow([w for key, w in by_key.items() if key not in done], exc))
        outcomes: dict[str, RowOutcome] = {}
        for key, write in by_key.items():
            result = done[key]
            if result.ok:
                outcomes[key] = _outcome(write, OutcomeKind.WRITTEN, str(result.record["id"]))
            else:
                outcomes[key] = _outcome(write, OutcomeKind.REJECTED, None, result.code, result.message)
        return outcomes

    def _narrow(self, refused: Sequence[TaskWrite], exc: HubSpotRequestError) -> dict[str, RowResult]:
        """A 400 refused the whole create batch (HubSpot validates a batch before creating any of it, so
        nothing was made): the rows it names are rejected, the others are sent again in halves until the
        bad rows stand alone, as status updates are narrowed (write.py), so one bad task never stops a run."""
        named, _loose = error_rows(exc.body.get("errors") or [exc.body])
        by_key = {w.sync_key: w for w in refused}
        if len(refused) == 1:
            key = refused[0].sync_key
            return {key: named.get(key) or RowResult(False, exc.category or str(exc.status), str(exc))}
        results = {key: named[key] for key in by_key if key in named}
        rest = [w for w in refused if w.sync_key not in named]
        halves = [rest] if results else [rest[: len(rest) // 2], rest[len(rest) // 2 :]]
        for half in halves:
            if half:
                results.update((k, _row(o)) for k, o in self._create(half).items())
        return results

    def _create_input(self, write: TaskWrite) -> dict[str, Any]:
        return {
            "properties": self.properties(write),
            "associations": [
                {
                    "to": {"id": write.deal_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": self.association_type_id,
                        }
                    ],
                }
            ],
        }


def _row(outcome: RowOutcome) -> RowResult:
    """A created row's outcome back as the batch result it came from."""
    if outcome.kind is OutcomeKind.WRITTEN:
        return RowResult(True, record={"id": outcome.task_id})
    return RowResult(False, outcome.code, outcome.message)


def _outcome(
    write: TaskWrite,
    kind: OutcomeKind,
    task_id: str | None,
    code: str | None = None,
    message: str | None = None,
) -> RowOutcome:
    return RowOutcome(
        deal_id=write.deal_id,
        target=WriteTarget.TASK,
        kind=kind,
        code=code,
        message=message,
        task_id=task_id,
        sync_key=write.sync_key,
    )
