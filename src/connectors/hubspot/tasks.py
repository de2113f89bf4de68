"""Follow-up tasks in HubSpot, effectively once.

HubSpot has no upsert that also associates, so a create is: write the chunk's intents to the ledger, send
`tasks/batch/create` with the task->deal association in the same call
(https://developers.hubspot.com/docs/api/crm/tasks#create-tasks), then confirm the id in the ledger. If a
create's outcome is uncertain (timeout, dropped connection, 5xx after send), or intents are left pending by
an earlier crash, the keys are looked up before anything is re-created. The lookup is `tasks/batch/read`
with `idProperty` = the unique `bant_sync_key` property: unlike search it does not lag recent writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from connectors.concurrency import map_in_parallel
from connectors.errors import TransientError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import format_datetime
from connectors.hubspot.write import RowResult, batch_update, chunks, read_results
from connectors.model import OutcomeKind, RowOutcome, TaskAction, TaskWrite, WriteTarget
from connectors.registry import Confirmation, Intent, TaskLedger

_PRIORITY = {"high": "HIGH", "normal": "MEDIUM", "medium": "MEDIUM", "low": "LOW"}
OPEN = "open"
COMPLETED = "completed"


def due_timestamp(due: date) -> str:
    """Noon UTC on the due date, so the date reads the same in every timezone of the Americas and Europe."""
    return format_datetime(datetime.combine(due, time(12, 0), tzinfo=UTC))


class TaskWriter:
    """Creates, updates and completes bant-sync tasks; `association_type_id` comes from preflight."""

    def __init__(self, client: HubSpotClient, ledger: TaskLedger, key_property: str) -> None:
        self._client = client
        self._ledger = ledger
        self._key = key_property
        self.association_type_id: int | None = None
        self._reconciled_pending = False

    def _properties(self, write: TaskWrite, *, with_key: bool) -> dict[str, str]:
        props = {
            "hs_task_subject": write.subject,
            "hs_task_body": write.description,
            "hs_timestamp": due_timestamp(write.due),
            "hs_task_priority": _PRIORITY.get(write.priority.lower(), "HIGH"),
        }
        if write.owner_id:
            props["hubspot_owner_id"] = write.owner_id
        if with_key:
            props.update({self._key: write.sync_key, "hs_task_status": "NOT_STARTED", "hs_task_type": "TODO"})
        return props

    def lookup(self, keys: Sequence[str], *, retry: bool = True) -> dict[str, dict[str, Any]]:
        """Existing tasks (their JSON) by sync key (read-your-writes consistent), in chunks of 100."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(keys)):
            body = {
                "idProperty": self._key,
                "inputs": [{"id": key} for key in chunk],
                "properties": [self._key, "hs_task_status"],
            }
            response = self._client.call_json(
                "other", "tasks_batch", "read", body, archived=False, retry=retry
            )
            for record in response.get("results") or []:
                key = (record.get("properties") or {}).get(self._key)
                if key:
                    found[key] = record
        return found

    def reconcile_pending(self) -> None:
        """Confirm intents a crash or a lost response left behind, if HubSpot has their task."""
        pending = [entry for entry in self._ledger.pending() if entry.task_id is None]
        if pending:
            found = self.lookup([entry.sync_key for entry in pending])
            self._ledger.confirm(
                [
                    Confirmation(entry.sync_key, str(record["id"]), _state(record), entry.missing)
                    for entry in pending
                    if (record := found.get(entry.sync_key)) is not None
                ]
            )
        self._reconciled_pending = True

    def apply(self, writes: Sequence[TaskWrite], missing: Mapping[str, tuple[str, ...]]) -> list[RowOutcome]:
        """One RowOutcome per write. `missing` (deal id -> criteria) is what the ledger records; a deal it
        does not name keeps what its ledger entry holds (its status did not change)."""
        if not self._reconciled_pending:
            self.reconcile_pending()
        creates: list[TaskWrite] = []
        updates: list[tuple[TaskWrite, str]] = []
        completes: list[tuple[TaskWrite, str]] = []
        outcomes: dict[int, RowOutcome] = {}
        unknown: list[tuple[int, TaskWrite]] = []
        entries = self._ledger.lookup(write.sync_key for write in writes)
        missing = {
            **{w.deal_id: e.missing if (e := entries.get(w.sync_key)) else () for w in writes},
            **missing,
        }
        for index, write in enumerate(writes):
            entry = entries.get(write.sync_key)
            task_id = write.task_id or (entry.task_id if entry else None)
            if write.action is TaskAction.CREATE and not (task_id and entry and entry.state == OPEN):
                creates.append(write)
            elif task_id is None:
                unknown.append((index, write))
            elif write.action is TaskAction.COMPLETE:
                completes.append((write, task_id))
            else:
                updates.append((write, task_id))
        if unknown:
            found = self.lookup([w.sync_key for _, w in unknown])
            for index, write in unknown:
                record = found.get(write.sync_key)
                if record is not None:
                    target = completes if write.action is TaskAction.COMPLETE else updates
                    target.append((write, str(record["id"])))
                elif write.action is TaskAction.UPDATE:
                    creates.append(write)
                else:
                    outcomes[index] = _outcome(write, OutcomeKind.UNCHANGED, None, None, "no such task")
        results: dict[str, RowOutcome] = {}
        for created in map_in_parallel(
            lambda chunk: self._create(chunk, missing),
            list(chunks(creates)),
            self._client.settings.max_in_flight,
        ):
            results.update(created)
        results.update(self._update(updates, missing, complete=False))
        results.update(self._update(completes, missing, complete=True))
        return [outcomes.get(i) or results[w.sync_key] for i, w in enumerate(writes)]

    def _create(
        self, chunk: Sequence[TaskWrite], missing: Mapping[str, tuple[str, ...]]
    ) -> dict[str, RowOutcome]:
        if self.association_type_id is None:
            raise RuntimeError("preflight() must run before tasks are created (association type unknown)")
        self._ledger.intend([Intent(w.sync_key, w.deal_id, missing.get(w.deal_id, ())) for w in chunk])
        by_key = {w.sync_key: w for w in chunk}
        done: dict[str, RowResult] = {}
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                for key, record in self.lookup([k for k in by_key if k not in done], retry=False).items():
                    done[key] = RowResult(True, record=record)
            todo = [w for key, w in by_key.items() if key not in done]
            if not todo:
                return
            body = {"inputs": [self._create_input(w) for w in todo]}
            response = self._client.call_json("other", "tasks_batch", "create", body, retry=False)
            keys = [w.sync_key for w in todo]
            done.update(read_results(response, keys, lambda r: (r.get("properties") or {}).get(self._key)))

        try:
            self._client.policy.call(attempt)
        except TransientError as exc:
            for key in by_key:
                done.setdefault(key, RowResult(False, "UNCERTAIN", f"{exc}; reconciled by key next run"))
        outcomes: dict[str, RowOutcome] = {}
        confirmations: list[Confirmation] = []
        for key, write in by_key.items():
            result = done[key]
            if result.ok:
                task_id = str(result.record["id"])
                confirmations.append(Confirmation(key, task_id, OPEN, missing.get(write.deal_id, ())))
                outcomes[key] = _outcome(write, OutcomeKind.WRITTEN, task_id)
            else:
                outcomes[key] = _outcome(write, OutcomeKind.REJECTED, None, result.code, result.message)
        self._ledger.confirm(confirmations)
        return outcomes

    def _create_input(self, write: TaskWrite) -> dict[str, Any]:
        return {
            "properties": self._properties(write, with_key=True),
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

    def _update(
        self,
        rows: Sequence[tuple[TaskWrite, str]],
        missing: Mapping[str, tuple[str, ...]],
        *,
        complete: bool,
    ) -> dict[str, RowOutcome]:
        if not rows:
            return {}
        payload = [
            (task_id, {"hs_task_status": "COMPLETED"} if complete else self._properties(w, with_key=False))
            for w, task_id in rows
        ]
        results = batch_update(self._client, "tasks_batch", payload, "task")
        outcomes: dict[str, RowOutcome] = {}
        confirmations: list[Confirmation] = []
        state = COMPLETED if complete else OPEN
        for write, task_id in rows:
            result = results[task_id]
            if result.ok:
                confirmations.append(
                    Confirmation(write.sync_key, task_id, state, missing.get(write.deal_id, ()))
                )
                outcomes[write.sync_key] = _outcome(write, OutcomeKind.WRITTEN, task_id)
            else:
                outcomes[write.sync_key] = _outcome(
                    write, OutcomeKind.REJECTED, task_id, result.code, result.message
                )
        self._ledger.confirm(confirmations)
        return outcomes


def _state(record: Mapping[str, Any]) -> str:
    status = (record.get("properties") or {}).get("hs_task_status")
    return COMPLETED if status == "COMPLETED" else OPEN


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
