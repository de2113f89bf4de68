"""What a run is asked to do, and what it reports back (the `sync --json` object, the ops API's run)."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.model import OutcomeKind, RowOutcome, TaskAction, TaskWrite, WritePlan, WriteTarget
from worker.state import Rejection, RunRecord
from worker.state.model import RunMode, RunStatus, Trigger, member

READ_OPERATION = "read"
"""The rejection operation of a deal quarantined because a value of it could not be read."""
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


@dataclass(frozen=True, slots=True, init=False)
class RunRequest:
    """`mode`: incremental (default), full, deal (with deal_id), owner (with owner_id) or events (the deals
    CRM change events marked dirty, see worker.events). `mode` and
    `trigger` may be given as their string values; they are kept as RunMode and Trigger members."""

    connection: str
    mode: RunMode
    deal_id: str | None
    owner_id: str | None
    dry_run: bool
    trigger: Trigger

    def __init__(
        self,
        connection: str,
        mode: str = RunMode.INCREMENTAL,
        deal_id: str | None = None,
        owner_id: str | None = None,
        dry_run: bool = False,
        trigger: str = Trigger.CLI,
    ) -> None:
        object.__setattr__(self, "connection", connection)
        object.__setattr__(self, "mode", member("mode", mode, RunMode))
        object.__setattr__(self, "deal_id", deal_id)
        object.__setattr__(self, "owner_id", owner_id)
        object.__setattr__(self, "dry_run", dry_run)
        object.__setattr__(self, "trigger", member("trigger", trigger, Trigger))

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


COUNTER_GROUPS = ("deals", "tasks", "statuses")
"""The run counters, each a group of named counts; the state store keeps them flat as `<group>_<name>`."""
_DEAL_KEYS = ("read", "assessed", "written", "unchanged", "rejected", "unreadable")
_TASK_KEYS = ("created", "updated", "completed")


def flat_counts(
    deals: Mapping[str, int], tasks: Mapping[str, int], statuses: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Run counters as the state store keeps them: `deals_written`, `tasks_created`, `statuses_qualified`."""
    groups = zip(COUNTER_GROUPS, (deals, tasks, statuses or {}), strict=True)
    return {f"{group}_{name}": value for group, counts in groups for name, value in counts.items()}


def grouped_counts(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """The stored flat counters back in their groups (the inverse of flat_counts); other keys are dropped."""
    groups: dict[str, dict[str, int]] = {group: {} for group in COUNTER_GROUPS}
    for key, value in counts.items():
        for group in COUNTER_GROUPS:
            name = key.removeprefix(f"{group}_")
            if name != key and name:
                groups[group][name] = value
                break
    return groups


def _with_defaults(counts: Mapping[str, int], keys: tuple[str, ...]) -> dict[str, int]:
    shown = {key: counts.get(key, 0) for key in keys}
    shown.update({k: v for k, v in counts.items() if k not in shown})
    return shown


@dataclass
class RunSummary:
    """One run's report: what `sync --json` prints, what `status --json` lists and what `GET /runs` and
    `GET /runs/{id}` return, all through `as_json`. Built live by a run, or from its stored RunRecord."""

    run_id: str
    connection: str
    mode: RunMode
    status: RunStatus
    dry_run: bool
    started_at: str
    finished_at: str | None = None
    deals: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    api_calls: int = 0
    error: str | None = None
    planned: list[dict[str, Any]] | None = field(default_factory=list)
    """A dry run's writes it would have made; None for a stored run (they are not stored)."""
    rejections: list[dict[str, str | None]] = field(default_factory=list)
    """Every row the CRM refused: `{deal_id, operation, code, message}`, in the order they came back."""
    trigger: Trigger = Trigger.CLI
    scope: str | None = None

    @classmethod
    def of_record(cls, record: RunRecord, rejections: list[Rejection] | None = None) -> RunSummary:
        """The report of a stored run (its `planned` writes are not stored)."""
        groups = grouped_counts(record.counts)
        return cls(
            run_id=record.run_id,
            connection=record.connection,
            mode=record.mode,
            status=RunStatus(record.status),
            dry_run=record.dry_run,
            started_at=record.started_at.isoformat(),
            finished_at=record.finished_at.isoformat() if record.finished_at else None,
            deals=groups["deals"],
            tasks=groups["tasks"],
            statuses=groups["statuses"],
            api_calls=record.api_calls,
            error=record.error,
            planned=None,
            rejections=[r.as_json() for r in rejections or ()],
            trigger=record.trigger,
            scope=record.scope,
        )

    def stored_counts(self) -> dict[str, int]:
        """The counters as the state store keeps them (see flat_counts)."""
        return flat_counts(self.deals, self.tasks, self.statuses)

    def as_json(self, with_rejections: bool = True) -> dict[str, Any]:
        """The one JSON shape of a run; `with_rejections=False` leaves the rejected rows out (run lists)."""
        body: dict[str, Any] = {
            "run_id": self.run_id,
            "connection": self.connection,
            "trigger": self.trigger,
            "mode": self.mode,
            "scope": self.scope,
            "status": self.status,
            "dry_run": self.dry_run,
            "deals": _with_defaults(self.deals, _DEAL_KEYS),
            "tasks": _with_defaults(self.tasks, _TASK_KEYS),
            "statuses": dict(self.statuses),
            "api_calls": self.api_calls,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }
        if with_rejections:
            body["rejections"] = list(self.rejections)
        if self.dry_run and self.planned is not None:
            body["planned"] = self.planned
        return body
