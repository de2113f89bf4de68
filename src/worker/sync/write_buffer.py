"""Carry writes across pages so every batch call the CRM gets is full.

A page of 200 HubSpot deals yields ~110 new tasks: sent page by page that is two task calls (100 + 10) per
page instead of the 1.1 the API-call budget allows (docs/design.md §5). The buffer sends only full batches
until the run ends, and keeps the bookkeeping honest: a page counts as done — its cursor may be checkpointed,
its audit rows and deal states saved — only once every write planned for it has been sent, and pages are
done in order. A deal's task write never goes out before its status write (the worker holds the task of
a deal whose status write was rejected). Memory stays bounded: at most one batch of each kind is carried,
plus the tasks waiting for their status batch and the page in hand.

Task creates and writes to existing tasks (update, reopen, complete) are different CRM calls (HubSpot
`tasks/batch/create` and `tasks/batch/update`; Salesforce a collection upsert and a collection update), so
each kind has its own queue and is sent in full batches of its own: an event run whose 10,000 edits make
4,300 creates and 5,700 completions sends 43 + 57 task calls, not 100 calls of each kind half full. A
deal's create never goes out before a write to one of its existing tasks still queued (completing a task
under a retired key frees the key before the fresh create).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.errors import ConnectorError
from connectors.model import (
    Cursor,
    OutcomeKind,
    RowOutcome,
    StatusWrite,
    TaskAction,
    TaskWrite,
    WritePlan,
    WriteTarget,
)
from connectors.protocol import Connector
from worker.state import DealState


@dataclass
class PendingPage:
    """One page's bookkeeping while its writes wait to be sent."""

    cursor: Cursor | None
    states: list[DealState]
    status_left: int = 0
    tasks_left: int = 0
    """Writes to existing tasks (update, reopen, complete) still queued."""
    creates_left: int = 0
    """Task creates still queued."""

    @property
    def sent(self) -> bool:
        return self.status_left == 0 and self.tasks_left == 0 and self.creates_left == 0


@dataclass
class Flushed:
    """What one flush sent and which pages it completed (in order).

    When the CRM call failed part-way, `error` is that ConnectorError, `outcomes` holds only the rows that
    landed before it (the error's `landed`), `done` is empty and `landed_states` are the states of the deals
    whose status write landed. Whoever settles a flush must raise `error` once the landed rows are recorded.
    """

    plan: WritePlan
    outcomes: list[RowOutcome]
    done: list[PendingPage] = field(default_factory=list)
    error: ConnectorError | None = None
    landed_states: list[DealState] = field(default_factory=list)

    def written_status(self) -> set[str]:
        return {
            o.deal_id
            for o in self.outcomes
            if o.target is WriteTarget.STATUS and o.kind is OutcomeKind.WRITTEN
        }


class WriteBuffer:
    """Queue of pages and their writes; `apply` is the connector's. Batch sizes are the CRM's caps."""

    def __init__(
        self, apply: Callable[[WritePlan], list[RowOutcome]], status_batch: int, task_batch: int
    ) -> None:
        self._apply = apply
        self._status_batch = max(1, status_batch)
        self._task_batch = max(1, task_batch)
        self._pages: deque[PendingPage] = deque()
        self._status: deque[StatusWrite] = deque()
        self._tasks: deque[TaskWrite] = deque()
        """Writes to existing tasks."""
        self._creates: deque[TaskWrite] = deque()

    def add(self, page: PendingPage, plan: WritePlan) -> None:
        creates = [write for write in plan.task_writes if write.action is TaskAction.CREATE]
        by_id = [write for write in plan.task_writes if write.action is not TaskAction.CREATE]
        page.status_left, page.tasks_left, page.creates_left = (
            len(plan.status_writes),
            len(by_id),
            len(creates),
        )
        self._pages.append(page)
        self._status.extend(plan.status_writes)
        self._tasks.extend(by_id)
        self._creates.extend(creates)

    def ready(self) -> bool:
        """True when a full batch of any kind is waiting, or a page needs no write at all."""
        return (
            len(self._status) >= self._status_batch
            or len(self._tasks) >= self._task_batch
            or len(self._creates) >= self._task_batch
            or bool(self._pages and self._pages[0].sent)
        )

    def flush(self, final: bool = False) -> Flushed:
        """Send full batches (everything when `final`) and return the pages that are now complete."""
        status_n = len(self._status) if final else len(self._status) - len(self._status) % self._status_batch
        held = {write.deal_id for index, write in enumerate(self._status) if index >= status_n}
        tasks_n = self._take(self._tasks, held, final)
        held.update(write.deal_id for index, write in enumerate(self._tasks) if index >= tasks_n)
        creates_n = self._take(self._creates, held, final)
        plan = WritePlan(
            tuple(self._status.popleft() for _ in range(status_n)),
            tuple(self._tasks.popleft() for _ in range(tasks_n))
            + tuple(self._creates.popleft() for _ in range(creates_n)),
        )
        try:
            outcomes = self._apply(plan) if not plan.is_empty else []
        except ConnectorError as exc:
            return self._failed(plan, exc)
        flushed = Flushed(plan, outcomes)
        self._settle(status_n, tasks_n, creates_n, flushed.done)
        return flushed

    def _take(self, queue: deque[TaskWrite], held: set[str], final: bool) -> int:
        """How many of `queue` go now: up to the first write of a deal in `held` (its status write, or for
        a create a write to its existing task, is still queued: the worker must know how that went first),
        cut to whole batches unless `final`."""
        cleared = next((i for i, write in enumerate(queue) if write.deal_id in held), len(queue))
        return cleared if final else cleared - cleared % self._task_batch

    def _failed(self, plan: WritePlan, error: ConnectorError) -> Flushed:
        """The part of a failed flush that landed. The buffer is not usable afterwards: the run ends."""
        landed = list(error.landed)
        written = {
            o.deal_id for o in landed if o.target is WriteTarget.STATUS and o.kind is OutcomeKind.WRITTEN
        }
        states = [state for page in self._pages for state in page.states if state.deal_id in written]
        return Flushed(plan, landed, [], error, states)

    def _settle(self, status_sent: int, tasks_sent: int, creates_sent: int, done: list[PendingPage]) -> None:
        for page in self._pages:
            take = min(page.status_left, status_sent)
            page.status_left -= take
            status_sent -= take
            take = min(page.tasks_left, tasks_sent)
            page.tasks_left -= take
            tasks_sent -= take
            take = min(page.creates_left, creates_sent)
            page.creates_left -= take
            creates_sent -= take
        while self._pages and self._pages[0].sent:
            done.append(self._pages.popleft())

    @property
    def empty(self) -> bool:
        return not self._pages


def batch_sizes(connector: Connector) -> tuple[int, int]:
    """A connector's (status, task) batch caps, as its capabilities declare them."""
    caps = connector.capabilities
    return caps.status_batch, caps.task_batch
