"""The write step of a run: status writes, then task writes, with a deal's task held back when the CRM
rejected its status write in this run."""

from __future__ import annotations

from connectors.errors import ConnectorError
from connectors.model import OutcomeKind, RowOutcome, TaskWrite, WritePlan, WriteTarget
from connectors.protocol import Connector
from worker.sync.task_sync import TaskSync


class OrderedApply:
    """The write step of a run: status writes, then task writes through TaskSync. A deal whose status
    write the CRM rejected in this run gets no task write (its task and its status field must never
    contradict each other); its task rows are reported unchanged, code `HELD`."""

    def __init__(self, connector: Connector, tasks: TaskSync) -> None:
        self.connector = connector
        self.tasks = tasks
        self.rejected_status: set[str] = set()

    def apply(self, plan: WritePlan) -> list[RowOutcome]:
        outcomes: list[RowOutcome] = []
        if plan.status_writes:
            outcomes = self.connector.apply(WritePlan(status_writes=plan.status_writes))
            self.rejected_status.update(
                o.deal_id for o in outcomes if o.kind in (OutcomeKind.REJECTED, OutcomeKind.INVALID)
            )
        send = [w for w in plan.task_writes if w.deal_id not in self.rejected_status]
        try:
            sent = iter(self.tasks.apply(send))
        except ConnectorError as exc:
            exc.landed[:0] = outcomes
            raise
        outcomes.extend(
            next(sent) if write.deal_id not in self.rejected_status else _held(write)
            for write in plan.task_writes
        )
        return outcomes


def _held(write: TaskWrite) -> RowOutcome:
    return RowOutcome(
        write.deal_id,
        WriteTarget.TASK,
        OutcomeKind.UNCHANGED,
        "HELD",
        "not written: the CRM rejected this deal's status write in this run",
        write.task_id,
        write.sync_key,
    )
