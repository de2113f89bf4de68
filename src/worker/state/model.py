"""Values the state store takes and returns. Every datetime is tz-aware and normalised to UTC; statuses
may be given as rules.model.Status members and are kept as their plain string values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TypeVar


class RunStatus(StrEnum):
    """Where a run is: running, one of the finished statuses, or abandoned (its process died)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    QUOTA_STOPPED = "quota_stopped"
    ABANDONED = "abandoned"
    """A run left "running" whose lease expired: its process died (see StateStore.mark_abandoned)."""


class RunMode(StrEnum):
    """What a run reads: changed deals (incremental), every open deal (full), one deal or one owner's."""

    INCREMENTAL = "incremental"
    FULL = "full"
    DEAL = "deal"
    OWNER = "owner"
    EVENTS = "events"
    """The deals a CRM event marked dirty (see StateStore.record_events), re-read by id."""


class Trigger(StrEnum):
    """What started a run."""

    SCHEDULE = "schedule"
    CLI = "cli"
    HTTP = "http"
    DEMO = "demo"
    EVENT = "event"
    """A CRM change event (a HubSpot webhook), after the coalescer's debounce window."""


TRIGGERS: frozenset[str] = frozenset(Trigger)
MODES: frozenset[str] = frozenset(RunMode)
FINISHED_STATUSES: frozenset[str] = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.QUOTA_STOPPED}
)
RUNNING = RunStatus.RUNNING
ABANDONED = RunStatus.ABANDONED
RUN_STATUSES: frozenset[str] = frozenset(RunStatus)
RUN_SOURCE = "run"
"""An audit row a run wrote when its own status write landed."""
OBSERVED_SOURCE = "observed"
"""An audit row for a status the CRM showed that the audit log did not end with (see audit_recovery)."""


def utc(name: str, value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused because its instant is unknowable."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


_E = TypeVar("_E", bound=StrEnum)


def _check(name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(sorted(allowed))}; got {value!r}")


def member(name: str, value: str, kind: type[_E]) -> _E:
    """`value` as a member of `kind` (a stored string reads back as its member); ValueError naming `name`
    and the allowed values otherwise."""
    _check(name, value, frozenset(kind))
    return kind(value)


@dataclass(frozen=True, slots=True)
class Holder:
    """The process that holds a lease: its host name and PID (for people, and for the liveness check),
    the PID namespace it runs in and a random id of the process's lifetime.

    Two holders share a machine only when both the host name and the PID namespace match (two containers
    given one host name have separate PID namespaces, and must never judge each other's PIDs). `instance`
    tells a restarted process from its dead predecessor when both got the same PID (PID 1 in a container).
    """

    host: str
    pid: int
    namespace: str = ""
    instance: str = ""

    def same_machine(self, other: Holder) -> bool:
        """True when a PID of `other` means the same process here (same host and PID namespace)."""
        return (self.host, self.namespace) == (other.host, other.namespace)

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}"


@dataclass(frozen=True, slots=True)
class Lease:
    """The right to run on one connection until `expires_at`. `token` is the fencing token: it grows on
    every acquisition, and a write carrying a token that is no longer current is refused. `holder` is the
    process holding it and `heartbeat_at` its last renewal (None for a lease stored before schema v3)."""

    connection: str
    run_id: str
    token: int
    expires_at: datetime
    holder: Holder | None = None
    heartbeat_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "expires_at", utc("expires_at", self.expires_at))
        if self.heartbeat_at is not None:
            object.__setattr__(self, "heartbeat_at", utc("heartbeat_at", self.heartbeat_at))

    def describe(self) -> str:
        """ "run R (host H, pid P, last heartbeat T)", as errors and `unlock` name a holder."""
        details = [self.holder.describe()] if self.holder is not None else []
        if self.heartbeat_at is not None:
            details.append(f"last heartbeat {self.heartbeat_at.isoformat()}")
        return f"run {self.run_id}" + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One deal's qualification status moving from `old_status` (None: first seen) to `new_status`.
    `source` is "run" for a write of this run, "observed" for a status found in the CRM that the audit log
    did not end with (a write whose run died before its checkpoint, or an edit made in the CRM)."""

    deal_id: str
    old_status: str | None
    new_status: str
    missing: tuple[str, ...]
    at: datetime
    source: str = RUN_SOURCE
    actor: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", utc("at", self.at))
        object.__setattr__(self, "missing", tuple(self.missing))
        object.__setattr__(self, "old_status", None if self.old_status is None else str(self.old_status))
        object.__setattr__(self, "new_status", str(self.new_status))


@dataclass(frozen=True, slots=True)
class DealState:
    """The latest status the worker knows for one deal (for status counts and per-owner reports).
    `flagged_since` is the day its current unqualified stretch began (None when it is not unqualified, or
    for a state written before the store kept it)."""

    deal_id: str
    owner_id: str | None
    status: str
    missing: tuple[str, ...]
    updated_at: datetime
    flagged_since: date | None = None
    deal_name: str | None = None
    """The deal's name when it was assessed (None in states stored before schema v5)."""
    snooze_until: date | None = None
    snoozed_on: date | None = None
    """The deal's snooze date and the day bant-sync first saw it (None without a snooze, or before v6)."""
    judged: str | None = None
    """The judgement key of the deal as it was judged (worker.sync.judged; None before v8 or when the run
    kept no key): an incremental run that reads the deal again with the same key spends no task lookup."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "updated_at", utc("updated_at", self.updated_at))
        object.__setattr__(self, "missing", tuple(self.missing))
        object.__setattr__(self, "status", str(self.status))


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A stored StatusChange with where it came from. `seq` orders rows (higher is later); `source` is
    "run" or "observed" (rows stored before schema version 2 read as "run")."""

    seq: int
    connection: str
    run_id: str
    deal_id: str
    old_status: str | None
    new_status: str
    missing: tuple[str, ...]
    at: datetime
    source: str = RUN_SOURCE
    actor: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """One row the CRM refused in a run. `operation`: "status" for a status write, "task_<action>"
    (task_create, task_update, ...) for a task write; `code` and `message` are the CRM's own words."""

    deal_id: str
    operation: str
    code: str | None
    message: str | None
    at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", utc("at", self.at))

    def as_json(self) -> dict[str, str | None]:
        """As `sync --json`, `status` and `GET /runs/{id}` show it."""
        return {
            "deal_id": self.deal_id,
            "operation": self.operation,
            "code": self.code,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One sync run. `scope` names a scoped run's target (a deal or owner id); `counts` are outcome
    counters (deals read/assessed/written/..., tasks created/...), saved at every checkpoint."""

    run_id: str
    connection: str
    trigger: Trigger
    mode: RunMode
    started_at: datetime
    dry_run: bool = False
    scope: str | None = None
    finished_at: datetime | None = None
    status: str = RunStatus.RUNNING
    """Always a RunStatus member (a given string is checked and converted); typed `str` for its readers."""
    counts: Mapping[str, int] = field(default_factory=dict)
    api_calls: int = 0
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "trigger", member("trigger", self.trigger, Trigger))
        object.__setattr__(self, "mode", member("mode", self.mode, RunMode))
        object.__setattr__(self, "status", member("status", self.status, RunStatus))
        object.__setattr__(self, "started_at", utc("started_at", self.started_at))
        if self.finished_at is not None:
            object.__setattr__(self, "finished_at", utc("finished_at", self.finished_at))
        object.__setattr__(self, "counts", dict(self.counts))


def check_finish_status(status: str) -> None:
    """A run can only be finished into one of FINISHED_STATUSES."""
    _check("status", status, FINISHED_STATUSES)


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One change event a CRM pushed: its id (deduplicated per connection), the deal it names and when the
    change happened. An `echo` (a change bant-sync itself made) is recorded, so a resend of it is a
    duplicate, but marks nothing dirty."""

    event_id: str
    deal_id: str
    occurred_at: datetime
    echo: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "occurred_at", utc("occurred_at", self.occurred_at))


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a connection's change stream resumes: the CRM's position token (a Salesforce replay id, hex),
    the time of the event at that position (None when unknown, e.g. a keepalive's) and when it was saved."""

    position: str
    event_at: datetime | None
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class LagStats:
    """Quantiles (seconds) of event-to-write-back lags; all None when there are no samples."""

    count: int
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> LagStats:
        """Nearest-rank quantiles of `values` (any order)."""
        ordered = sorted(values)
        if not ordered:
            return cls(0)

        def rank(q: float) -> float:
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        return cls(len(ordered), rank(0.50), rank(0.95), rank(0.99), ordered[-1])

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_s": self.p50,
            "p95_s": self.p95,
            "p99_s": self.p99,
            "max_s": self.max,
        }


@dataclass(frozen=True)
class EventTally:
    """What one StateStore.record_events call did: events received (all of them), duplicates ignored,
    echoes recorded without marking, and deals marked dirty (distinct deals)."""

    received: int
    duplicates: int
    echoes: int
    marked: int


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """A connection kept in the state store (`bant-sync connections add`): its config-file keys other than
    `crm` and `enabled` in `settings` (never a secret), who it serves (`tenant`, free text) and when it was
    added, last changed and disabled (None while enabled)."""

    name: str
    crm: str
    tenant: str
    enabled: bool
    settings: Mapping[str, object]
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None = None
