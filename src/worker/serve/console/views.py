"""What the console's pages show, read from the state store (no CRM call but the deal links' one-off
account lookup): connections and their health, runs with live progress, deals by status and compliance.

Progress of a running run comes from its stored counters, which the pipeline saves at every checkpoint
(one per page): deals read so far, at a rate since the run started. The total is known for a one-deal run
(1), estimated for a full sweep from the connection's last finished full sweep (how many deals it read)
and for an owner's run from the owner's deals bant-sync knows; an incremental run has no total (only the
CRM knows how many deals changed), so it shows the rate without a time left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from connectors.protocol import Connector
from rules import Status
from worker.report.compliance import by_owner
from worker.report.model import ComplianceRow
from worker.serve.ops_health import ConnectionHealth, HealthCheck
from worker.service import Worker
from worker.state import Lease, Rejection, RunRecord
from worker.state.model import RunMode, RunStatus
from worker.sync.run_model import RunSummary

log = structlog.get_logger()

HISTORY = 100
"""Runs read per connection to find its last full sweep (a full run's estimated total)."""
RUNNING_SHOWN = 5
"""Latest runs read per connection for the running ones (one connection runs one at a time)."""
LINK_RETRY_SECONDS = 300.0


@dataclass(frozen=True)
class Progress:
    """How far a running run is: deals read, written (or planned, in a dry run), the rate, and the time
    left where a total is known."""

    read: int
    written: int
    elapsed_seconds: float
    total: int | None
    total_basis: str | None
    """Where the total comes from ("one deal", "the last full sweep read N", "the owner's known deals")."""

    @property
    def per_minute(self) -> float | None:
        return self.read / self.elapsed_seconds * 60 if self.elapsed_seconds > 0 and self.read else None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.read / self.total)

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far; None without a total or a rate (or when past the estimate)."""
        if self.total is None or not self.read or self.elapsed_seconds <= 0 or self.read >= self.total:
            return None
        return (self.total - self.read) * self.elapsed_seconds / self.read

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "written": self.written,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "per_minute": None if self.per_minute is None else round(self.per_minute, 1),
            "total": self.total,
            "total_basis": self.total_basis,
            "fraction": self.fraction,
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
        }


@dataclass(frozen=True)
class ConnectionView:
    name: str
    crm: str
    enabled: bool
    identity: str | None
    schedule: str
    last_run: RunRecord | None
    lease: Lease | None
    health: ConnectionHealth
    """The connection's judgement as GET /health gives it (worker.serve.ops_health)."""
    running: list[RunRecord] = field(default_factory=list)

    @property
    def state(self) -> str:
        """ "failing" when /health calls it degraded; "warning" when its latest runs failed but fewer than
        the degraded threshold; "healthy" when the last finished run did not fail; "no runs yet"."""
        if self.health.degraded:
            return "failing"
        if self.health.failed_in_a_row:
            return "warning"
        return "healthy" if self.health.last_run_status else "no runs yet"


def schedule_text(worker: Worker, name: str) -> str:
    schedule = worker.settings.connections[name].schedule
    return (
        f"incremental every {schedule.incremental_every_minutes} min; "
        f"full sweep at cron '{schedule.full_sweep_cron}'"
    )


def connection_view(worker: Worker, checker: HealthCheck, name: str, now: datetime) -> ConnectionView:
    conn = worker.settings.connections[name]
    store = worker.store
    latest = store.list_runs(name, RUNNING_SHOWN)
    return ConnectionView(
        name=name,
        crm=conn.crm,
        enabled=conn.enabled,
        identity=store.identity_of(name),
        schedule=schedule_text(worker, name),
        last_run=latest[0] if latest else None,
        lease=store.lease_holder(name, now),
        health=checker.connection(name, now),
        running=[r for r in latest if r.status == RunStatus.RUNNING],
    )


def connection_views(worker: Worker, checker: HealthCheck, now: datetime) -> list[ConnectionView]:
    return [connection_view(worker, checker, name, now) for name in worker.settings.connections]


def _total(worker: Worker, record: RunRecord) -> tuple[int | None, str | None]:
    if record.mode == RunMode.DEAL:
        return 1, "one deal"
    if record.mode == RunMode.FULL:
        for past in worker.store.list_runs(record.connection, HISTORY):
            if (
                past.run_id != record.run_id
                and past.mode == RunMode.FULL
                and past.status == RunStatus.SUCCEEDED
            ):
                read = int(past.counts.get("deals_read", 0))
                if read:
                    return read, f"the last full sweep read {read} deals"
        return None, None
    if record.mode == RunMode.OWNER and record.scope:
        known = sum(1 for s in worker.store.current_states(record.connection) if s.owner_id == record.scope)
        if known:
            return known, f"the owner's {known} deals bant-sync knows"
    return None, None


def progress_of(worker: Worker, record: RunRecord, now: datetime) -> Progress:
    counts = record.counts
    total, basis = _total(worker, record)
    return Progress(
        read=int(counts.get("deals_read", 0)),
        written=int(counts.get("deals_written", 0)) + int(counts.get("deals_would_write", 0)),
        elapsed_seconds=max(0.0, (now - record.started_at).total_seconds()),
        total=total,
        total_basis=basis,
    )


def duration_seconds(record: RunRecord, now: datetime) -> float:
    end = record.finished_at or now
    return max(0.0, (end - record.started_at).total_seconds())


def run_json(worker: Worker, record: RunRecord, now: datetime) -> dict[str, Any]:
    """A run as the console's live updates read it: the ops API's run shape plus progress and duration."""
    body = RunSummary.of_record(record).as_json(with_rejections=False)
    body["duration_seconds"] = round(duration_seconds(record, now), 1)
    body["finished"] = record.status != RunStatus.RUNNING
    body["progress"] = progress_of(worker, record, now).as_json() if not body["finished"] else None
    return body


def compliance(worker: Worker, connection: str) -> list[ComplianceRow]:
    """Per owner (by name), their open deals, unqualified and snoozed, least compliant first."""
    criteria = [c.name for c in worker.framework(connection).criteria]
    states = worker.store.current_states(connection)
    return by_owner(states, worker.store.owners(connection), criteria)


def status_table(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Every status in the framework's order (zero counts kept), then any other stored value."""
    rows = [(status.value, counts.get(status.value, 0)) for status in Status]
    rows += [(name, count) for name, count in sorted(counts.items()) if name not in {s.value for s in Status}]
    return rows


@dataclass(frozen=True)
class RejectionRow:
    deal_id: str
    deal_name: str | None
    url: str | None
    operation: str
    code: str | None
    message: str | None


class DealLinks:
    """Deal URLs in the CRM (`Connector.record_url`), from one connector per connection made on first use
    and kept: HubSpot needs the portal id and Salesforce the instance host, one lookup each for the life of
    the process. A connection whose connector cannot be made (CRM down, bad credentials) shows no links
    and is tried again after LINK_RETRY_SECONDS."""

    def __init__(self, worker: Worker, clock: Callable[[], float] = time.monotonic) -> None:
        self._worker = worker
        self._clock = clock
        self._lock = threading.Lock()
        self._connectors: dict[str, Connector] = {}
        self._failed_at: dict[str, float] = {}

    def url(self, connection: str, deal_id: str) -> str | None:
        with self._lock:
            connector = self._connectors.get(connection)
            if connector is None:
                failed = self._failed_at.get(connection)
                if failed is not None and self._clock() - failed < LINK_RETRY_SECONDS:
                    return None
                try:
                    connector = self._worker.connector(connection)
                except Exception as exc:  # any CRM or config failure just means no links
                    self._failed_at[connection] = self._clock()
                    log.warning("console: no deal links", connection=connection, error=type(exc).__name__)
                    return None
                self._connectors[connection] = connector
            try:
                return connector.record_url(deal_id)
            except Exception as exc:
                self._connectors.pop(connection, None)
                self._failed_at[connection] = self._clock()
                connector.close()
                log.warning("console: no deal links", connection=connection, error=type(exc).__name__)
                return None

    def close(self) -> None:
        with self._lock:
            for connector in self._connectors.values():
                connector.close()
            self._connectors.clear()


def rejection_rows(
    worker: Worker, links: DealLinks, connection: str, rejections: Sequence[Rejection]
) -> list[RejectionRow]:
    """The run's refused rows with each deal's name (from the store) and its link in the CRM."""
    states = worker.store.deal_states_for(connection, {r.deal_id for r in rejections})
    return [
        RejectionRow(
            deal_id=r.deal_id,
            deal_name=states[r.deal_id].deal_name if r.deal_id in states else None,
            url=links.url(connection, r.deal_id),
            operation=r.operation,
            code=r.code,
            message=r.message,
        )
        for r in rejections
    ]


def owners_by_id(worker: Worker, connections: Iterable[str]) -> dict[str, dict[str, str]]:
    """Per connection, owner id to name, for scopes shown on run pages."""
    return {name: {o.id: o.name for o in worker.store.owners(name)} for name in connections}
