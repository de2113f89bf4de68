"""CRM-neutral values that cross the connector boundary: pages in, write plans out, row outcomes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from rules.model import Deal, Status


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do, declared rather than probed: `prefetch` (the worker may read the next page
    on another thread while this one is written), and the CRM's caps per batch call for status writes and
    task writes."""

    prefetch: bool
    status_batch: int
    task_batch: int


@dataclass(frozen=True, slots=True)
class SetupReport:
    """What `setup` (or its check) found, the same for every CRM: `created` what it made, `ok` what is in
    place, `problems` what a person must fix (each saying what to do and which permission to grant),
    `notes` facts worth knowing (today's API usage)."""

    created: tuple[str, ...] = ()
    ok: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """Position in a CRM's change stream: the newest `(modified_at, deal_id)` processed. UTC, tz-aware."""

    modified_at: datetime
    deal_id: str


@dataclass(frozen=True, slots=True)
class UnreadableDeal:
    """A deal whose record holds a value that cannot be decoded (an overflowing number or epoch, `Infinity`
    where an integer belongs, a datetime no calendar has): quarantined — not judged, nothing written, its
    task left as it is — and reported as a rejection naming the field, so one bad value never stops the
    connection. `modified_at` places it in the change stream (the cursor moves past it)."""

    deal_id: str
    field: str
    crm_field: str
    value: str
    reason: str
    modified_at: datetime | None = None

    @property
    def message(self) -> str:
        return (
            f"{self.crm_field} ({self.field}) holds {self.value}, which cannot be read: {self.reason}; "
            "fix the value on the deal (the next run that reads it judges it again)"
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of open deals, and the cursor to save once this page's writes are done.

    `cursor` is None for a page that holds no deal (nothing to move past), and for the pages of a full
    sweep out of modified order before its last (HubSpot's list endpoint: only the last carries the
    sweep's cursor). `unreadable` are the deals of the page that could not be read.
    """

    deals: tuple[Deal, ...]
    cursor: Cursor | None
    unreadable: tuple[UnreadableDeal, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """New values for bant-sync's output fields on one deal."""

    deal_id: str
    status: Status
    missing: tuple[str, ...]
    score: int
    checked_at: datetime
    flagged_since: date | None
    reasons: str = ""
    """One line per missing criterion (`<reason> — <hint>`), and a last line about a snooze, if any."""


class TaskAction(StrEnum):
    """What a task write does. CREATE sends every owned field with the task open; UPDATE and REOPEN send
    the fields named in `TaskWrite.fields` of an existing task (REOPEN also sets it open); COMPLETE sets
    its status to completed (and only the `fields` named, normally none)."""

    CREATE = "create"
    UPDATE = "update"
    REOPEN = "reopen"
    COMPLETE = "complete"


class TaskField(StrEnum):
    """The task fields bant-sync may write; a connector maps each to its CRM's field (its field table)."""

    SUBJECT = "subject"
    DESCRIPTION = "description"
    PRIORITY = "priority"
    DUE = "due"
    OWNER = "owner"
    KEY = "key"


CONTENT_FIELDS = frozenset({TaskField.SUBJECT, TaskField.DESCRIPTION, TaskField.PRIORITY})
"""Rewritten when the verdict changes (status or missing criteria), never to undo a person's edit."""


@dataclass(frozen=True, slots=True)
class TaskWrite:
    """One follow-up task change for a deal's owner. `sync_key` names the CRM account and the deal;
    `task_id` is the CRM id (every action but CREATE); `fields` are what UPDATE/REOPEN write."""

    action: TaskAction
    sync_key: str
    deal_id: str
    owner_id: str | None
    subject: str
    description: str
    due: date
    priority: str = "High"
    task_id: str | None = None
    fields: frozenset[TaskField] = frozenset()


@dataclass(frozen=True, slots=True)
class CrmTask:
    """A bant-sync task as the CRM holds it now, found by its sync key."""

    task_id: str
    sync_key: str
    is_open: bool
    subject: str | None = None
    due: date | None = None
    owner_id: str | None = None
    priority: str | None = None


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


@dataclass(frozen=True, slots=True)
class Owner:
    """A CRM user who can own deals (Salesforce `User`, a HubSpot owner), so people read names instead of
    ids. `name` is never empty (a HubSpot owner without a name is named by its e-mail, or by its id);
    `email` and `manager_id` are None where the CRM holds none; `active` is False for a deactivated user or
    an archived owner."""

    id: str
    name: str
    email: str | None
    manager_id: str | None
    active: bool
    user_id: str | None = None
    """The CRM user behind the owner where the two differ (HubSpot's `userId`, which a record's
    `hs_updated_by_user_id` names); None where the owner id is the user id (Salesforce)."""


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """Which closed deals a history read covers, and the moment each one's qualification is judged at.

    `closed_from`/`closed_to` bound the close date (both inclusive). `entry_stage` is a CRM stage value
    (Salesforce `StageName`, HubSpot `dealstage` id): a deal is judged by what its fields held when it first
    entered that stage; None judges it at creation (a POC deal is created when the POC starts)."""

    closed_from: date
    closed_to: date
    entry_stage: str | None = None


@dataclass(frozen=True, slots=True)
class ClosedDeal:
    """A won or lost deal, with its qualification fields as they were at the entry point.

    `deal` holds the values at entry (criteria, and `stage` at entry), with the name, owner, type, amount and
    close date it closed with. `entered_at` is when it was created or first entered the window's entry
    stage; None when it never entered that stage (it belongs to no entry cohort). `fallback_fields` names
    the canonical fields whose history the CRM could not give (field history not tracked, or no history
    entry for a value that is set): their value at close stands in, and every report says so."""

    deal: Deal
    won: bool
    closed_on: date
    entered_at: datetime | None
    fallback_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DealChange:
    """One change a CRM pushed about some of its deals (Salesforce: one Change Data Capture event).

    `event_id` is unique per change in the CRM's stream (Salesforce: the replay id in hex), so the worker
    can recognise a resent one. `deal_ids` are the deals it touched (a Salesforce transaction can name
    several). `occurred_at` is when the CRM committed it (UTC, tz-aware). `echo` is True for a change
    bant-sync itself made (its own write-back): it must not trigger a re-assessment."""

    event_id: str
    deal_ids: tuple[str, ...]
    occurred_at: datetime
    echo: bool = False


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """What one read of a change stream gave: the changes (possibly none, for a keepalive) and the
    `position` to resume from after them (opaque text, saved by the worker once the changes are recorded),
    with `position_at` the commit time of the last change (None for a keepalive).

    `reconcile` is True when the CRM says changes were lost that it cannot name (Salesforce
    `GAP_OVERFLOW`): the worker reconciles with an incremental run."""

    changes: tuple[DealChange, ...]
    position: str | None
    position_at: datetime | None = None
    reconcile: bool = False
