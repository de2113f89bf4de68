"""CRM-neutral values that cross the connector boundary: pages in, write plans out, row outcomes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from rules.model import Deal, Status


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """Position in a CRM's change stream: the newest `(modified_at, deal_id)` processed. UTC, tz-aware."""

    modified_at: datetime
    deal_id: str


@dataclass(frozen=True, slots=True)
class Page:
    """One page of open deals, and the cursor to save once this page's writes are done.

    `cursor` is None only for a page that holds no deal (nothing to move past).
    """

    deals: tuple[Deal, ...]
    cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """New values for bant-sync's output fields on one deal."""

    deal_id: str
    status: Status
    missing: tuple[str, ...]
    score: int
    checked_at: datetime
    flagged_since: date | None


class TaskAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    COMPLETE = "complete"


@dataclass(frozen=True, slots=True)
class TaskWrite:
    """One follow-up task change for a deal's owner. `sync_key` is deterministic per deal and connection;
    `task_id` is the CRM id when known (update/complete of a task created earlier)."""

    action: TaskAction
    sync_key: str
    deal_id: str
    owner_id: str | None
    subject: str
    description: str
    due: date
    priority: str = "High"
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Everything one page needs written: only real changes (the worker diffs before planning)."""

    status_writes: tuple[StatusWrite, ...] = ()
    task_writes: tuple[TaskWrite, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.status_writes and not self.task_writes


class OutcomeKind(StrEnum):
    WRITTEN = "written"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    INVALID = "invalid"


class WriteTarget(StrEnum):
    STATUS = "status"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """How one row of a plan ended. `code`/`message` carry the CRM's words for a rejection; `task_id` is
    the CRM id of a task that was created or touched."""

    deal_id: str
    target: WriteTarget
    kind: OutcomeKind
    code: str | None = None
    message: str | None = None
    task_id: str | None = None
    sync_key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
