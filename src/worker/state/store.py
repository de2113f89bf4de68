"""StateStore: the one object the worker holds for cursors, the lease, runs, audit log and task ledger.

Every time is passed in by the caller (tz-aware; stored as UTC): the store never reads a clock, so tests
and the pipeline decide what "now" is. Safe to share between threads; each process opens its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta

from connectors.model import Cursor, Owner
from worker.state import (
    connections,
    deals,
    digests,
    identities,
    leases,
    owners,
    progress,
    rejections,
    reporting,
    run_stats,
    runs,
)
from worker.state import events as event_rows
from worker.state import ledger as ledger_rows
from worker.state.digests import Delivery
from worker.state.engine import Database
from worker.state.leases import Alive
from worker.state.ledger import LedgerEntry, StoreLedger
from worker.state.migrate import ensure_schema
from worker.state.model import (
    AuditRow,
    DealState,
    EventTally,
    Holder,
    InboundEvent,
    LagStats,
    Lease,
    Rejection,
    RunRecord,
    StatusChange,
    StoredConnection,
    StreamPosition,
)
from worker.state.run_stats import DurationStats, Outcome, RunTimes, RunTotals


class StateStore:
    """Durable state of every connection, in SQLite (default) or PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def open(
        cls, url: str, *, schema: str | None = None, busy_timeout: float = 10.0, connect_timeout: int = 5
    ) -> StateStore:
        """Connect, create the schema on first use or migrate an older one, and return the store.

        `url`: "sqlite:////abs/path/state.db" or "postgresql://user@host:5432/db" (psycopg 3 is used);
        "sqlite://" is an in-memory database on one shared connection, for single-threaded tests only.
        `schema`: PostgreSQL only, an existing schema to keep the tables in (search_path).
        Raises StateConfigError, StateUnavailableError or SchemaVersionError, each saying what to fix.
        """
        db = Database.open(url, schema=schema, busy_timeout=busy_timeout, connect_timeout=connect_timeout)
        try:
            db.check_schema_exists()
            ensure_schema(db)
        except BaseException:
            db.close()
            raise
        return cls(db)

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._db.backend

    @property
    def where(self) -> str:
        """The database URL with its password hidden, for status output."""
        return self._db.where

    def close(self) -> None:
        self._db.close()

    # lease
    def acquire_lease(
        self,
        connection: str,
        run_id: str,
        now: datetime,
        ttl: timedelta,
        *,
        me: Holder | None = None,
        alive: Alive = leases.pid_alive,
    ) -> Lease:
        """Take the lease (LeaseHeldError naming a live holder); a dead holder on this machine is taken
        over at once. `me` defaults to this process; `alive` is the PID liveness check."""
        return leases.acquire(self._db, connection, run_id, now, ttl, me=me, alive=alive)

    def renew_lease(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        return leases.renew(self._db, lease, now, ttl)

    def release_lease(self, lease: Lease) -> bool:
        """Give `lease` up (nothing happens when it is no longer current); True when it was released."""
        return leases.release(self._db, lease)

    def lease_holder(self, connection: str, now: datetime) -> Lease | None:
        return leases.holder(self._db, connection, now)

    def recorded_lease(self, connection: str) -> Lease | None:
        """The lease the store records for `connection`, expired or not; None when nobody holds it."""
        return leases.recorded(self._db, connection)

    # progress
    def get_cursor(self, connection: str) -> Cursor | None:
        return progress.get_cursor(self._db, connection)

    def checkpoint(
        self,
        lease: Lease,
        cursor: Cursor | None,
        status_changes: Sequence[StatusChange],
        deal_states: Sequence[DealState],
        run_progress: Mapping[str, int],
        rejections: Sequence[Rejection] = (),
    ) -> None:
        """In one transaction: check `lease` is current (else LeaseLostError, nothing written), move the
        cursor forward (never back), append the audit rows, upsert deal states, append the rows the CRM
        rejected to the run's rejections, save the run's counters."""
        progress.checkpoint(self._db, lease, cursor, status_changes, deal_states, run_progress, rejections)

    def audit(self, connection: str, deal_id: str | None = None, limit: int = 100) -> list[AuditRow]:
        return progress.audit(self._db, connection, deal_id, limit)

    # one page of deals (one query per page; see state.deals)
    def deal_states_for(self, connection: str, deal_ids: Iterable[str]) -> dict[str, DealState]:
        """The stored state of each of these deals that has one, by deal id."""
        return deals.deal_states_for(self._db, connection, deal_ids)

    def last_audited_status(self, connection: str, deal_ids: Iterable[str]) -> dict[str, str]:
        """The status each deal's latest audit row moved it to (the last status known to have reached the
        CRM), by deal id; deals never audited are absent."""
        return deals.last_audited_status(self._db, connection, deal_ids)

    def flag_clocks(self, connection: str, deal_ids: Iterable[str]) -> dict[str, date]:
        """The day each unqualified deal was first flagged in its current unqualified stretch, by deal id:
        its state's flagged_since, else derived from the audit log (see state.deals.flag_clocks)."""
        return deals.flag_clocks(self._db, connection, deal_ids)

    def known_and_clocks(self, connection: str, deal_ids: Iterable[str]) -> tuple[set[str], dict[str, date]]:
        """The deals holding a stored state, and their `flag_clocks`, from one read (a page's clocks)."""
        return deals.known_and_clocks(self._db, connection, deal_ids)

    def snooze_days(self, connection: str, deal_ids: Iterable[str]) -> dict[str, tuple[date, date]]:
        """(snooze until, first seen) of the deals whose stored state records a snooze."""
        return deals.snooze_days(self._db, connection, deal_ids)

    def expired_snoozes(self, connection: str, today: date) -> list[str]:
        """Deals stored as snoozed whose snooze ended before `today`."""
        return deals.expired_snoozes(self._db, connection, today)

    def snoozed_deals(self, connection: str) -> list[DealState]:
        """The connection's snoozed deals, the soonest snooze end first."""
        return deals.snoozed_deals(self._db, connection)

    def snooze_notes(self, connection: str, deal_ids: Iterable[str]) -> dict[str, AuditRow]:
        """Each deal's latest audit row that snoozed it (who, when, the reason in its note)."""
        return reporting.snooze_notes(self._db, connection, deal_ids)

    def snooze_events(
        self, connection: str, prefix: str, start: datetime, end: datetime | None = None
    ) -> list[AuditRow]:
        """The audit rows from `start` (to `end`) whose note begins with `prefix` (refused, ended)."""
        return reporting.snooze_events(self._db, connection, prefix, start, end)

    def flagged_deals(self, connection: str) -> list[DealState]:
        """The connection's unqualified deals as last assessed (name, owner, missing criteria, since when)."""
        return deals.flagged_deals(self._db, connection)

    def forget_deal_states(
        self, lease: Lease, before: datetime, deal_id: str | Sequence[str] | None = None
    ) -> int:
        """Drop deal states not refreshed since `before` (the deals left the open set); see progress."""
        return progress.forget_deal_states(self._db, lease, before, deal_id)

    def status_counts(self, connection: str) -> dict[str, int]:
        return progress.status_counts(self._db, connection)

    def unqualified_by_owner(self, connection: str) -> dict[str, int]:
        return progress.unqualified_by_owner(self._db, connection)

    # runs
    def start_run(self, record: RunRecord) -> None:
        runs.start_run(self._db, record)

    def finish_run(
        self,
        run_id: str,
        finished_at: datetime,
        status: str,
        counts: Mapping[str, int],
        api_calls: int,
        error: str | None,
        rejections: Sequence[Rejection] = (),
    ) -> None:
        """Close the run; `rejections` are any refused rows that no checkpoint recorded."""
        runs.finish_run(self._db, run_id, finished_at, status, counts, api_calls, error, rejections)

    def list_runs(self, connection: str | None = None, limit: int = 20) -> list[RunRecord]:
        return runs.list_runs(self._db, connection, limit)

    def get_run(self, run_id: str) -> RunRecord | None:
        return runs.get_run(self._db, run_id)

    def mark_abandoned(self, connection: str, now: datetime) -> list[str]:
        return runs.mark_abandoned(self._db, connection, now)

    def run_rejections(self, run_id: str, limit: int | None = None) -> list[Rejection]:
        """The rows the CRM refused in `run_id`, in the order they were recorded (the first `limit`)."""
        return rejections.run_rejections(self._db, run_id, limit)

    def rejection_count(self, run_id: str) -> int:
        """How many rows the CRM refused in `run_id`."""
        return rejections.rejection_count(self._db, run_id)

    # aggregates over the whole run history (/metrics, /health; see state.run_stats)
    def run_totals(self) -> list[RunTotals]:
        """Per connection and status, the runs no longer running: count, API calls, rows written."""
        return run_stats.run_totals(self._db)

    def run_durations(self, bounds: Sequence[float]) -> dict[str, DurationStats]:
        """Per connection, its finished runs' durations counted against `bounds` (seconds, cumulative)."""
        return run_stats.run_durations(self._db, bounds)

    def run_times(self) -> dict[str, RunTimes]:
        """Per connection, when its latest run finished and its latest succeeded run finished."""
        return run_stats.run_times(self._db)

    def last_succeeded(self, connection: str) -> datetime | None:
        """When the connection's latest succeeded run finished; None when none has."""
        return run_stats.last_succeeded(self._db, connection)

    def rejection_totals(self) -> dict[str, int]:
        """Rows the CRM refused, per connection, over every run."""
        return run_stats.rejection_totals(self._db)

    def latest_outcomes(self, connection: str, limit: int) -> list[Outcome]:
        """The connection's latest `limit` runs that are no longer running, newest first."""
        return run_stats.latest_outcomes(self._db, connection, limit)

    # task ledger
    def ledger(self, identity: str) -> StoreLedger:
        """The task ledger of one CRM account (its identity; a 0.1 store filed it under the connection)."""
        return StoreLedger(self._db, identity)

    def rehome_ledger(self, connection: str, identity: str) -> int:
        return ledger_rows.rehome(self._db, connection, identity)

    def open_tasks_for(self, connection: str, deal_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        return self.ledger(connection).open_tasks_for(deal_ids)

    # CRM identities
    def record_identity(self, connection: str, crm: str, identity: str, now: datetime) -> None:
        identities.record_identity(self._db, connection, crm, identity, now)

    def connections_of(self, identity: str) -> list[str]:
        return identities.connections_of(self._db, identity)

    def identity_of(self, connection: str) -> str | None:
        return identities.identity_of(self._db, connection)

    # owners (names and e-mails of the CRM users who own deals)
    def replace_owners(self, connection: str, found: Sequence[Owner], now: datetime) -> None:
        """Make `found` the connection's cached owners, refreshed at `now`, in one transaction."""
        owners.replace_owners(self._db, connection, found, now)

    def owners(self, connection: str) -> list[Owner]:
        """The connection's cached owners, by name (empty until the first refresh)."""
        return owners.cached_owners(self._db, connection)

    def owners_refreshed_at(self, connection: str) -> datetime | None:
        """When the connection's owners were last refreshed; None when none are cached."""
        return owners.owners_refreshed_at(self._db, connection)

    # the outcome report's reads
    def current_states(self, connection: str) -> list[DealState]:
        """The latest verdict of every open deal bant-sync knows on `connection`."""
        return reporting.current_states(self._db, connection)

    def audit_until(self, connection: str, until: datetime) -> Iterator[AuditRow]:
        """Every audit row of `connection` at or before `until`, oldest first, streamed."""
        return reporting.audit_until(self._db, connection, until)

    # the weekly digest's delivery ledger (see state.digests)
    def claim_delivery(
        self,
        connection: str,
        week: str,
        recipient: str,
        channel: str,
        now: datetime,
        *,
        resend_uncertain: bool = False,
    ) -> bool:
        """Mark a digest delivery `sending` unless it was sent or is in doubt; True when the caller sends."""
        return digests.claim(
            self._db, connection, week, recipient, channel, now, resend_uncertain=resend_uncertain
        )

    def settle_delivery(
        self,
        connection: str,
        week: str,
        recipient: str,
        channel: str,
        state: str,
        now: datetime,
        error: str | None = None,
    ) -> None:
        """Record a claimed delivery as `sent`, or `failed` with its error."""
        digests.settle(self._db, connection, week, recipient, channel, state, now, error)

    def deliveries(self, connection: str, week: str) -> list[Delivery]:
        """The digest delivery ledger of one connection's week."""
        return digests.deliveries(self._db, connection, week)

    # CRM change events and the deals they marked dirty (see state.events)
    def record_events(self, connection: str, events: Sequence[InboundEvent], now: datetime) -> EventTally:
        """Record pushed events in one transaction: a duplicate event id is counted and ignored, an echo is
        kept (so its resend is a duplicate) but marks nothing, any other marks its deal dirty at `now`."""
        return event_rows.record_events(self._db, connection, events, now)

    def dirty_deals(self, connection: str, limit: int) -> list[str]:
        """Up to `limit` deals of `connection` marked dirty, oldest mark first."""
        return event_rows.dirty(self._db, connection, limit)

    def clear_dirty(
        self,
        connection: str,
        deal_ids: Iterable[str],
        marked_before: datetime,
        reassessed_at: datetime | None = None,
    ) -> int:
        """Clear the marks of `deal_ids` older than `marked_before` (a deal marked again since stays); with
        `reassessed_at`, record each cleared mark's lag from its earliest event."""
        return event_rows.clear_dirty(self._db, connection, deal_ids, marked_before, reassessed_at)

    def lag_stats(self, connection: str, since: datetime) -> LagStats:
        """Quantiles of the event-to-write-back lags of `connection` recorded since `since`."""
        return event_rows.lag_stats(self._db, connection, since)

    def lag_histogram(self, connection: str) -> tuple[list[tuple[str, int]], float]:
        """The cumulative lag histogram of `connection` (bucket bound, count; "+Inf" last) and its sum."""
        return event_rows.lag_histogram(self._db, connection)

    def stream_position(self, connection: str) -> StreamPosition | None:
        """Where the connection's change stream resumes (None: never saved)."""
        return event_rows.stream_position(self._db, connection)

    def save_stream_position(
        self, connection: str, position: str, event_at: datetime | None, now: datetime
    ) -> None:
        """Save where the change stream resumes, after recording the events up to `position`."""
        event_rows.save_stream_position(self._db, connection, position, event_at, now)

    def forget_stream_position(self, connection: str) -> bool:
        """Start the connection's change stream afresh (from the newest event) next time."""
        return event_rows.forget_stream_position(self._db, connection)

    def event_counts(self, connection: str) -> dict[str, int]:
        """`received`, `duplicates` and `echoes` totals of `connection`, and `dirty`: deals marked now."""
        return event_rows.event_counts(self._db, connection)

    # connections kept as data (see state.connections; validated by the config loader, not here)
    def add_connection(
        self,
        name: str,
        crm: str,
        settings: Mapping[str, object],
        now: datetime,
        *,
        tenant: str = "",
        enabled: bool = True,
    ) -> bool:
        """Store a connection; False (nothing written) when one of that name is already stored."""
        return connections.add(self._db, name, crm, settings, now, tenant=tenant, enabled=enabled)

    def stored_connections(self) -> list[StoredConnection]:
        """Every stored connection, by name (one query)."""
        return connections.list_all(self._db)

    def stored_connection(self, name: str) -> StoredConnection | None:
        return connections.get(self._db, name)

    def set_connection_enabled(self, name: str, enabled: bool, now: datetime) -> bool:
        """Enable or disable a stored connection; False when none of that name is stored."""
        return connections.set_enabled(self._db, name, enabled, now)

    def update_connection_settings(self, name: str, settings: Mapping[str, object], now: datetime) -> bool:
        """Replace a stored connection's settings; False when none of that name is stored."""
        return connections.update_settings(self._db, name, settings, now)

    def remove_connection(self, name: str) -> bool:
        """Delete a stored connection (its history stays); False when none of that name is stored."""
        return connections.remove(self._db, name)
