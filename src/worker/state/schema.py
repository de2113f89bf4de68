"""The state store's tables (schema version 9) and the column types that keep values honest.

Times are stored as UTC: `timestamptz` on PostgreSQL, naive-UTC text on SQLite (which has no time zone
type); both come back tz-aware. Tuples and counters are stored as JSON text so both backends read the same.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

from worker.state.model import utc

SCHEMA_VERSION = 9
"""The newest schema this code writes. Bump it together with a migration in migrate.MIGRATIONS."""


class UTCDateTime(TypeDecorator[datetime]):
    """A tz-aware datetime in, a tz-aware UTC datetime out; naive values are refused at bind time."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc("timestamp", value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StringTuple(TypeDecorator[tuple[str, ...]]):
    """A tuple of strings (criterion names), stored as a JSON array."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: tuple[str, ...] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps([str(item) for item in value])

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[str, ...] | None:
        return None if value is None else tuple(str(item) for item in json.loads(value))


class Counters(TypeDecorator[dict[str, int]]):
    """Named integer counters, stored as a JSON object with sorted keys."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: dict[str, int] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps({str(key): int(count) for key, count in value.items()}, sort_keys=True)

    def process_result_value(self, value: Any, dialect: Dialect) -> dict[str, int] | None:
        return None if value is None else {str(k): int(v) for k, v in json.loads(value).items()}


metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

leases = Table(
    "leases",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("run_id", String(100), nullable=True),
    Column("token", BigInteger, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("holder_host", String(255), nullable=True),
    Column("holder_pid", Integer, nullable=True),
    Column("holder_namespace", String(100), nullable=True),
    Column("holder_instance", String(40), nullable=True),
    Column("heartbeat_at", UTCDateTime, nullable=True),
)
"""One row per connection, never deleted. The holder columns (schema v3) name the process holding the
lease; `heartbeat_at` is its last renewal."""

cursors = Table(
    "cursors",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("modified_at", UTCDateTime, nullable=False),
    Column("deal_id", String(100), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(100), primary_key=True),
    Column("connection", String(200), nullable=False),
    Column("trigger", String(20), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("scope", String(200), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("status", String(20), nullable=False),
    Column("counts", Counters, nullable=False),
    Column("api_calls", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_runs_connection_started", "connection", "started_at"),
    Index("ix_runs_started", "started_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("connection", String(200), nullable=False),
    Column("run_id", String(100), nullable=False),
    Column("deal_id", String(100), nullable=False),
    Column("old_status", String(40), nullable=True),
    Column("new_status", String(40), nullable=False),
    Column("missing", StringTuple, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("source", String(20), nullable=True),
    Column("actor", String(100), nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_audit_connection_deal", "connection", "deal_id", "seq"),
)
"""Every status a deal took. `actor` (schema v6) is the CRM user whose edit caused the change where the CRM
names one (who snoozed a deal); `note` says what happened to a snooze ("Snoozed until …: reason")."""

deal_states = Table(
    "deal_states",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("deal_id", String(100), primary_key=True),
    Column("owner_id", String(100), nullable=True),
    Column("status", String(40), nullable=False),
    Column("missing", StringTuple, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("flagged_since", String(10), nullable=True),
    Column("deal_name", Text, nullable=True),
    Column("snooze_until", String(10), nullable=True),
    Column("snoozed_on", String(10), nullable=True),
    Column("judged", String(64), nullable=True),
    Index("ix_deal_states_connection_status", "connection", "status"),
)
"""The latest assessment of each open deal. `deal_name` (schema v5) is the deal's name when it was last
assessed, for what people read (the weekly digest); rows written before v5 have none until the next run.
`snooze_until` and `snoozed_on` (v6): the deal's snooze date and the day bant-sync first saw it, which the
snooze limit counts from. `judged` (v8): the deal's judgement key when last judged (worker.sync.judged)."""

task_ledger = Table(
    "task_ledger",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("sync_key", String(200), primary_key=True),
    Column("deal_id", String(100), nullable=False),
    Column("task_id", String(100), nullable=True),
    Column("state", String(20), nullable=False),
    Column("missing", StringTuple, nullable=False),
    Column("status", String(40), nullable=True),
    Index("ix_task_ledger_connection_deal", "connection", "deal_id"),
    Index("ix_task_ledger_connection_state", "connection", "state"),
)

rejections = Table(
    "rejections",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("run_id", String(100), nullable=False),
    Column("connection", String(200), nullable=False),
    Column("deal_id", String(100), nullable=False),
    Column("operation", String(40), nullable=False),
    Column("code", String(200), nullable=True),
    Column("message", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_rejections_run", "run_id", "seq"),
    Index("ix_rejections_connection_deal", "connection", "deal_id"),
)
"""Rows the CRM refused, per run: deal id, operation (`status`, `task_create`, ...), code and message."""

identities = Table(
    "identities",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("crm", String(40), nullable=False),
    Column("identity", String(200), nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Index("ix_identities_identity", "identity"),
)
"""The CRM account (Salesforce org id, HubSpot portal id) each connection last reached."""

owners = Table(
    "owners",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("owner_id", String(100), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("email", String(255), nullable=True),
    Column("manager_id", String(100), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("refreshed_at", UTCDateTime, nullable=False),
    Column("user_id", String(100), nullable=True),
)
"""The CRM users who can own deals (schema v4), per connection: names and e-mails for what people read and
for `sync --owner EMAIL`. Replaced whole by each refresh; `refreshed_at` dates the cache. `user_id` (v6): the
CRM user behind the owner where it differs from the owner id (HubSpot), to name who edited a deal."""

digest_deliveries = Table(
    "digest_deliveries",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("week", String(8), primary_key=True),
    Column("recipient", String(255), primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_digest_deliveries_connection_week", "connection", "week", "state"),
)
"""The weekly digest's delivery ledger (schema v5): one row per connection, ISO week (`2026-W49`),
recipient e-mail (lower case) and channel (`email`, `slack`). `state` is `sending` (claimed, before the
send), `sent` or `failed`; a recipient is sent a week's digest at most once per channel."""

inbound_events = Table(
    "inbound_events",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("deal_id", String(100), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(20), nullable=False),
    Index("ix_inbound_events_received", "received_at"),
)
"""CRM change events received (schema v7), one row per connection and event id, so a resent event is a
duplicate. `source` is `event` or `echo` (bant-sync's own change). Rows older than EVENT_RETENTION are pruned
when events are recorded."""

dirty_deals = Table(
    "dirty_deals",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("deal_id", String(100), primary_key=True),
    Column("marked_at", UTCDateTime, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=True),
    Index("ix_dirty_deals_connection_marked", "connection", "marked_at"),
)
"""Deals an event marked for re-assessment (schema v7); `marked_at` is the latest mark. An EVENTS run
clears the marks older than the moment it listed them, so a deal marked again while it ran stays dirty.
`occurred_at` (schema v8; NULL on marks made before) is when the earliest change behind the mark happened
in the CRM, the start of the lag an EVENTS run records when it clears the mark."""

event_totals = Table(
    "event_totals",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("received", BigInteger, nullable=False),
    Column("duplicates", BigInteger, nullable=False),
    Column("echoes", BigInteger, nullable=False),
)
"""Running totals of recorded events per connection (schema v7), for status and /metrics: event rows are
pruned, these counters are not."""

event_lags = Table(
    "event_lags",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("deal_id", String(100), primary_key=True),
    Column("reassessed_at", UTCDateTime, primary_key=True),
    Column("lag_seconds", Float, nullable=False),
    Index("ix_event_lags_connection_time", "connection", "reassessed_at"),
)
"""Lag of each event-driven re-assessment (schema v8): from the CRM change (its event time) to the end of the
EVENTS run that wrote the verdict back. Pruned with the event rows; the quantiles `status` shows come from
here."""

event_lag_buckets = Table(
    "event_lag_buckets",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("le", String(20), primary_key=True),
    Column("total", BigInteger, nullable=False),
)
"""The lag histogram /metrics exposes (schema v8): per connection and bucket bound (`le`, seconds, "+Inf"),
how many re-assessments took at most that long, plus the `sum` row (seconds, as a count of milliseconds).
Counters only grow, as a Prometheus histogram's must."""

event_streams = Table(
    "event_streams",
    metadata,
    Column("connection", String(200), primary_key=True),
    Column("position", String(200), nullable=False),
    Column("event_at", UTCDateTime, nullable=True),
    Column("saved_at", UTCDateTime, nullable=False),
)
"""Where each connection's change stream resumes (schema v8): the position (a Salesforce replay id, hex) of
the last event recorded, that event's time, and when it was saved. Saved after the events are recorded, so a
crash in between re-delivers them and the event ids make them duplicates."""

connections = Table(
    "connections",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("crm", String(40), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Index("ix_connections_tenant", "tenant"),
)
"""Connections kept as data (schema v9; `bant-sync connections add`): the connection's config-file keys
other than `crm` and `enabled` as a JSON object in `settings`. Never a secret: its secrets come from the
same places as a file connection's (env BANT_SYNC_CONNECTIONS__NAME__*, its _FILE, the secrets file), found
by the connection's name. Its CRM identity, once known, is in `identities`."""
