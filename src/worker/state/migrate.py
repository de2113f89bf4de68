"""Schema creation on first use, and the version check on every open.

A fresh database gets every table at SCHEMA_VERSION. An older database is migrated one step at a time
(`MIGRATIONS[n]` takes version n to n+1) inside one exclusive transaction, so a crash mid-migration leaves
the old version intact (DDL is transactional on both SQLite and PostgreSQL). A newer database is refused
with a SchemaVersionError: an old bant-sync must not write tables it does not understand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import Connection, inspect, select, text, update

from worker.state.engine import Database
from worker.state.errors import SchemaVersionError, StateError
from worker.state.schema import (
    SCHEMA_VERSION,
    connections,
    digest_deliveries,
    dirty_deals,
    event_lag_buckets,
    event_lags,
    event_streams,
    event_totals,
    identities,
    inbound_events,
    metadata,
    owners,
    rejections,
    schema_version,
)

Migration = Callable[[Connection, str], None]
"""One step: (connection inside the migration transaction, backend name "sqlite" | "postgresql")."""


def _v1_to_v2(conn: Connection, backend: str) -> None:
    """Reconcile: the audit row's source, a deal's qualify-out clock, what a ledger task was last written
    with, run rejections, and the CRM identity of each connection."""
    conn.execute(text("ALTER TABLE audit_log ADD COLUMN source VARCHAR(20)"))
    conn.execute(text("ALTER TABLE deal_states ADD COLUMN flagged_since VARCHAR(10)"))
    conn.execute(text("ALTER TABLE task_ledger ADD COLUMN status VARCHAR(40)"))
    rejections.create(conn)
    identities.create(conn)


def _v2_to_v3(conn: Connection, backend: str) -> None:
    """Leases that recover in seconds: the holder's host, PID, PID namespace and process instance, and
    its last heartbeat. A lease held across the upgrade has none of them and simply expires."""
    conn.execute(text("ALTER TABLE leases ADD COLUMN holder_host VARCHAR(255)"))
    conn.execute(text("ALTER TABLE leases ADD COLUMN holder_pid INTEGER"))
    conn.execute(text("ALTER TABLE leases ADD COLUMN holder_namespace VARCHAR(100)"))
    conn.execute(text("ALTER TABLE leases ADD COLUMN holder_instance VARCHAR(40)"))
    timestamp = "TIMESTAMP WITH TIME ZONE" if backend == "postgresql" else "DATETIME"
    conn.execute(text(f"ALTER TABLE leases ADD COLUMN heartbeat_at {timestamp}"))


def _v3_to_v4(conn: Connection, backend: str) -> None:
    """Owners by name: the cached CRM users of each connection (filled by the next full sweep)."""
    owners.create(conn)


def _v4_to_v5(conn: Connection, backend: str) -> None:
    """The weekly digest: each deal state's name (filled by the deal's next run) and the delivery ledger."""
    conn.execute(text("ALTER TABLE deal_states ADD COLUMN deal_name TEXT"))
    digest_deliveries.create(conn)


def _v5_to_v6(conn: Connection, backend: str) -> None:
    """Snooze: who caused an audited change and what happened to a snooze; each deal's snooze date and the
    day it was first seen; the user behind each cached owner (filled by the next owners refresh). A store
    migrated from before v4 in the same pass has the owners table as `_v3_to_v4` made it, column included."""
    conn.execute(text("ALTER TABLE audit_log ADD COLUMN actor VARCHAR(100)"))
    conn.execute(text("ALTER TABLE audit_log ADD COLUMN note TEXT"))
    conn.execute(text("ALTER TABLE deal_states ADD COLUMN snooze_until VARCHAR(10)"))
    conn.execute(text("ALTER TABLE deal_states ADD COLUMN snoozed_on VARCHAR(10)"))
    if "user_id" not in {column["name"] for column in inspect(conn).get_columns("owners")}:
        conn.execute(text("ALTER TABLE owners ADD COLUMN user_id VARCHAR(100)"))


def _v6_to_v7(conn: Connection, backend: str) -> None:
    """Near-real-time: received CRM events (deduplicated by id), the deals they marked dirty, and the
    running event totals of each connection."""
    inbound_events.create(conn)
    dirty_deals.create(conn)
    event_totals.create(conn)


def _v7_to_v8(conn: Connection, backend: str) -> None:
    """Change streams and lag: where each stream resumes, when the change behind a dirty mark happened, and
    the lag of each event-driven re-assessment (samples and histogram); each deal state's judgement key
    (empty until the deal's next run). A store migrated from before v7 in the same pass has dirty_deals as
    `_v6_to_v7` made it, column included."""
    conn.execute(text("ALTER TABLE deal_states ADD COLUMN judged VARCHAR(64)"))
    if "occurred_at" not in {column["name"] for column in inspect(conn).get_columns("dirty_deals")}:
        timestamp = "TIMESTAMP WITH TIME ZONE" if backend == "postgresql" else "DATETIME"
        conn.execute(text(f"ALTER TABLE dirty_deals ADD COLUMN occurred_at {timestamp}"))
    event_lags.create(conn)
    event_lag_buckets.create(conn)
    event_streams.create(conn)


def _v8_to_v9(conn: Connection, backend: str) -> None:
    """Connections as data: the `connections` table (empty: every connection stays where it was, in the
    config file, until one is added with `bant-sync connections add`)."""
    connections.create(conn)


MIGRATIONS: Mapping[int, Migration] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
    7: _v7_to_v8,
    8: _v8_to_v9,
}
"""Version n -> n+1 steps."""


def ensure_schema(
    db: Database, *, target: int = SCHEMA_VERSION, migrations: Mapping[int, Migration] = MIGRATIONS
) -> int:
    """Create or migrate the schema to `target` and return the version found before (0: fresh)."""
    with db.write() as conn:
        if db.backend == "postgresql":
            # Concurrent first opens: only one creates the tables, the others wait and then see them.
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('bant-sync schema ' || current_schema()))")
            )
        if not inspect(conn).has_table(schema_version.name):
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=target))
            return 0
        found = conn.execute(select(schema_version.c.version)).scalar()
        if found is None:
            raise StateError(
                f"the state database at {db.where} has an empty schema_version table, so its layout is "
                f"unknown: restore it from a backup or point state_url at a new database"
            )
        if found > target:
            raise SchemaVersionError(found, target, db.where)
        for version in range(found, target):
            step = migrations.get(version)
            if step is None:
                raise StateError(
                    f"no migration from state schema version {version} to {version + 1} is known; "
                    f"upgrade bant-sync to a release that ships it"
                )
            step(conn, db.backend)
        if found != target:
            conn.execute(update(schema_version).values(version=target))
        return int(found)


def current_version(db: Database) -> int | None:
    """The schema version recorded in the database, or None if it holds no bant-sync schema yet."""
    with db.read() as conn:
        if not inspect(conn).has_table(schema_version.name):
            return None
        found = conn.execute(select(schema_version.c.version)).scalar()
        return None if found is None else int(found)
