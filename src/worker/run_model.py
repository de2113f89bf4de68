"""What a run is asked to do, and what it reports back (the `sync --json` object, the ops API's run)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.model import OutcomeKind, RowOutcome, TaskAction, TaskWrite, WritePlan, WriteTarget
from worker.state import Rejection

STATUS_OPERATION = "status"
"""The rejection operation of a status write; a task write's is `task_<action>` (task_create, ...)."""
_REFUSED = (OutcomeKind.REJECTED, OutcomeKind.INVALID)


def task_operation(write: TaskWrite) -> str:
    return f"task_{write.action.value}"


def rejections_of(plan: WritePlan, outcomes: list[RowOutcome], at: datetime) -> list[Rejection]:
    """The refused rows (rejected or invalid) among `outcomes`, each with its operation. A task outcome is
    matched to its TaskWrite in order among the writes of its deal (apply answers one outcome per write, in
    plan order, so this is the plain pairing; it also holds when only some outcomes came back)."""
    writes: dict[str, deque[TaskWrite]] = {}
    for write in plan.task_writes:
        writes.setdefault(write.deal_id, deque()).append(write)
    found: list[Rejection] = []
    for outcome in outcomes:
        task = None
        if outcome.target is WriteTarget.TASK:
            queue = writes.get(outcome.deal_id)
            task = queue.popleft() if queue else None
        if outcome.kind not in _REFUSED:
            continue
        operation = STATUS_OPERATION if outcome.target is WriteTarget.STATUS else "task"
        if task is not None:
            operation = task_operation(task)
        found.append(Rejection(outcome.deal_id, operation, outcome.code, outcome.message, at))
    return found


@dataclass(frozen=True, slots=True)
class RunRequest:
    """`mode`: incremental (default), full, deal (with deal_id) or owner (with owner_id)."""

    connection: str
    mode: str = "incremental"
    deal_id: str | None = None
    owner_id: str | None = None
    dry_run: bool = False
    trigger: str = "cli"

    @property
    def scope(self) -> str | None:
        return self.deal_id or self.owner_id


@dataclass
class RunTally:
    """Counters of one run, updated page by page."""

    deals: Counter[str] = field(default_factory=Counter)
    tasks: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    planned: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    rejections_saved: int = 0
    """How many of `rejections` (the first ones) a checkpoint has recorded; the rest go with finish_run."""

    def count_outcomes(self, plan: WritePlan, outcomes: list[RowOutcome]) -> None:
        written_status = {
            o.deal_id for o in outcomes if o.target is WriteTarget.STATUS and o.kind is OutcomeKind.WRITTEN
        }
        self.deals["written"] += len(written_status)
        for outcome in outcomes:
            if outcome.target is WriteTarget.STATUS and outcome.kind in (
                OutcomeKind.REJECTED,
                OutcomeKind.INVALID,
            ):
                self.deals[outcome.kind.value] += 1
        task_outcomes = [o for o in outcomes if o.target is WriteTarget.TASK]
        for write, outcome in zip(plan.task_writes, task_outcomes, strict=False):
            if outcome.kind is OutcomeKind.WRITTEN:
                self.tasks[_TASK_COUNTER[write.action]] += 1
            elif outcome.kind in (OutcomeKind.REJECTED, OutcomeKind.INVALID):
                self.tasks["rejected"] += 1
            elif outcome.code == "HELD":
                self.tasks["held"] += 1

    def record_dry_run(self, plan: WritePlan, assessed: int, old_status: dict[str, str | None]) -> None:
        self.deals["unchanged"] += assessed - len(plan.status_writes)
        self.deals["would_write"] += len(plan.status_writes)
        for write in plan.status_writes:
            self.planned.append(
                {
                    "kind": "status",
                    "deal_id": write.deal_id,
                    "from": old_status.get(write.deal_id),
                    "to": write.status.value,
                    "missing": list(write.missing),
                    "score": write.score,
                }
            )
        for task in plan.task_writes:
            self.tasks[_TASK_COUNTER[task.action]] += 1
            self.planned.append({"kind": "task", "action": task.action.value, "deal_id": task.deal_id})


_TASK_COUNTER = {
    TaskAction.CREATE: "created",
    TaskAction.UPDATE: "updated",
    TaskAction.REOPEN: "reopened",
    TaskAction.COMPLETE: "completed",
}


@dataclass
class RunSummary:
    """The result of one run, as `sync --json` prints it and `GET /runs/{id}` returns it."""

    run_id: str
    connection: str
    mode: str
    status: str
    dry_run: bool
    started_at: str
    finished_at: str | None = None
    deals: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    error: str | None = None
    planned: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, str | None]] = field(default_factory=list)
    """Every row the CRM refused: `{deal_id, operation, code, message}`, in the order they came back."""

    def as_json(self) -> dict[str, Any]:
        deals = {
            key: self.deals.get(key, 0) for key in ("read", "assessed", "written", "unchanged", "rejected")
        }
        deals.update({k: v for k, v in self.deals.items() if k not in deals})
        tasks = {key: self.tasks.get(key, 0) for key in ("created", "updated", "completed")}
        tasks.update({k: v for k, v in self.tasks.items() if k not in tasks})
        body: dict[str, Any] = {
            "run_id": self.run_id,
            "connection": self.connection,
            "mode": self.mode,
            "status": self.status,
            "dry_run": self.dry_run,
            "deals": deals,
            "tasks": tasks,
            "statuses": dict(self.statuses),
            "api_calls": self.api_calls,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "rejections": list(self.rejections),
        }
        if self.dry_run:
            body["planned"] = self.planned
        return body
