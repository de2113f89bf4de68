"""Schema creation on first use, the version check, and step-by-step migration."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, inspect, text

from connectors.model import Owner
from worker.state import (
    SCHEMA_VERSION,
    DealState,
    EventTally,
    InboundEvent,
    LeaseHeldError,
    RunRecord,
    SchemaVersionError,
    StateError,
    StateStore,
    StatusChange,
)
from worker.state.engine import Database
from worker.state.migrate import current_version, ensure_schema
from worker.state.schema import leases

from .conftest import T0, Target


def _db(target: Target) -> Database:
    return Database.open(target.url, schema=target.schema)


def test_first_open_creates_the_schema_at_the_current_version(target: Target) -> None:
    """Opening an empty database creates every table and records SCHEMA_VERSION."""
    db = _db(target)
    try:
        assert current_version(db) is None
        StateStore.open(target.url, schema=target.schema).close()
        assert current_version(db) == SCHEMA_VERSION
        with db.read() as conn:
            tables = set(inspect(conn).get_table_names())
        assert {
            "schema_version",
            "leases",
            "cursors",
            "runs",
            "audit_log",
            "deal_states",
            "task_ledger",
            "owners",
            "digest_deliveries",
            "inbound_events",
            "dirty_deals",
            "event_totals",
        } <= tables
    finally:
        db.close()


def test_reopening_keeps_the_data(target: Target) -> None:
    """A second open finds the schema current and changes nothing."""
    first = target.open()
    first.acquire_lease("sf", "r1", T0, timedelta(hours=1))
    first.close()
    second = target.open()
    try:
        holder = second.lease_holder("sf", T0)
        assert holder is not None and holder.run_id == "r1"
    finally:
        second.close()


def test_newer_schema_is_refused_with_upgrade_advice(target: Target) -> None:
    """A database written by a newer bant-sync is refused, naming both versions and saying to upgrade."""
    target.open().close()
    db = _db(target)
    with db.write() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    db.close()
    with pytest.raises(SchemaVersionError) as caught:
        target.open()
    message = str(caught.value)
    assert "upgrade bant-sync" in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message and f"up to {SCHEMA_VERSION}" in message
    assert caught.value.found == SCHEMA_VERSION + 1


def _add_run_notes(conn: Connection, backend: str) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN notes TEXT"))


def _backfill_notes(conn: Connection, backend: str) -> None:
    conn.execute(text("UPDATE runs SET notes = 'migrated'"))


def test_older_schema_is_migrated_step_by_step(target: Target) -> None:
    """An older database runs each migration in order once and ends at the target version."""
    store = target.open()
    store.start_run(RunRecord("r1", "sf", "cli", "full", T0))
    store.close()
    db = _db(target)
    try:
        steps = {SCHEMA_VERSION: _add_run_notes, SCHEMA_VERSION + 1: _backfill_notes}
        assert ensure_schema(db, target=SCHEMA_VERSION + 2, migrations=steps) == SCHEMA_VERSION
        assert current_version(db) == SCHEMA_VERSION + 2
        with db.read() as conn:
            assert conn.execute(text("SELECT notes FROM runs")).scalar() == "migrated"
        assert ensure_schema(db, target=SCHEMA_VERSION + 2, migrations={}) == SCHEMA_VERSION + 2
    finally:
        db.close()


def test_missing_migration_step_is_a_clear_error_and_changes_nothing(target: Target) -> None:
    """Without a migration for some step the open fails, and the version and tables stay as they were."""
    target.open().close()
    db = _db(target)
    try:
        steps = {SCHEMA_VERSION: _add_run_notes}
        with pytest.raises(StateError, match=f"no migration from state schema version {SCHEMA_VERSION + 1}"):
            ensure_schema(db, target=SCHEMA_VERSION + 2, migrations=steps)
        assert current_version(db) == SCHEMA_VERSION
        with db.read() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("runs")}
        assert "notes" not in columns
    finally:
        db.close()


def test_a_version_1_store_is_migrated_to_version_2_keeping_its_rows(target: Target) -> None:
    """A store written before reconcile (version 1) gains the audit source, the qualify-out clock, the
    ledger's written status and the rejections and identities tables; its ledger rows stay."""
    target.open().close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_4(conn)
            for table in ("rejections", "identities", "owners"):
                conn.execute(text(f"DROP TABLE {table}"))
            for table, column in (
                ("audit_log", "source"),
                ("deal_states", "flagged_since"),
                ("task_ledger", "status"),
            ):
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
            _drop_lease_holder_columns(conn)
            conn.execute(
                text(
                    "INSERT INTO task_ledger (connection, sync_key, deal_id, task_id, state, missing) "
                    "VALUES ('hs', 'bs1-abc-1', '1', 't1', 'open', '[\"budget\"]')"
                )
            )
            conn.execute(text("UPDATE schema_version SET version = 1"))
        assert ensure_schema(db) == 1
        assert current_version(db) == SCHEMA_VERSION == 9
        with db.read() as conn:
            inspector = inspect(conn)
            assert {"rejections", "identities"} <= set(inspector.get_table_names())
            assert "status" in {c["name"] for c in inspector.get_columns("task_ledger")}
            assert "source" in {c["name"] for c in inspector.get_columns("audit_log")}
            assert "flagged_since" in {c["name"] for c in inspector.get_columns("deal_states")}
            kept = conn.execute(text("SELECT task_id FROM task_ledger WHERE sync_key = 'bs1-abc-1'"))
            assert kept.scalar() == "t1"
    finally:
        db.close()


def _to_version_8(conn: Connection) -> None:
    """Take a current store's tables back to version 8: no connections table."""
    conn.execute(text("DROP TABLE connections"))


def _to_version_7(conn: Connection) -> None:
    """Take a current store's tables back to version 7: no stream positions or lags, dirty deals without
    their event time, deal states without a judgement key."""
    _to_version_8(conn)
    for table in ("event_streams", "event_lags", "event_lag_buckets"):
        conn.execute(text(f"DROP TABLE {table}"))
    conn.execute(text("ALTER TABLE dirty_deals DROP COLUMN occurred_at"))
    conn.execute(text("ALTER TABLE deal_states DROP COLUMN judged"))


def _to_version_6(conn: Connection) -> None:
    """Take a current store's tables back to version 6: no inbound events, dirty deals or event totals."""
    _to_version_7(conn)
    for table in ("inbound_events", "dirty_deals", "event_totals"):
        conn.execute(text(f"DROP TABLE {table}"))


def _to_version_5(conn: Connection) -> None:
    """Take a current store's tables back to version 5: no audit actor or note, no snooze days."""
    _to_version_6(conn)
    for table, column in (
        ("audit_log", "actor"),
        ("audit_log", "note"),
        ("deal_states", "snooze_until"),
        ("deal_states", "snoozed_on"),
        ("owners", "user_id"),
    ):
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))


def _to_version_4(conn: Connection) -> None:
    """Take a current store's tables back to version 4: no digest ledger, no deal names."""
    _to_version_5(conn)
    conn.execute(text("DROP TABLE digest_deliveries"))
    conn.execute(text("ALTER TABLE deal_states DROP COLUMN deal_name"))


LEASE_HOLDER_COLUMNS = ("holder_host", "holder_pid", "holder_namespace", "holder_instance", "heartbeat_at")


def _drop_lease_holder_columns(conn: Connection) -> None:
    for column in LEASE_HOLDER_COLUMNS:
        conn.execute(text(f"ALTER TABLE leases DROP COLUMN {column}"))


def test_a_version_2_store_is_migrated_to_version_3_keeping_its_lease(target: Target) -> None:
    """A version 2 store gains the lease holder and heartbeat columns; a lease held across the upgrade
    keeps its token, names no holder (so it is never judged dead) and is taken over once it expires."""
    target.open().close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_4(conn)
            _drop_lease_holder_columns(conn)
            conn.execute(text("DROP TABLE owners"))
            expires = T0 + timedelta(minutes=15)
            conn.execute(leases.insert().values(connection="sf", run_id="r1", token=7, expires_at=expires))
            conn.execute(text("UPDATE schema_version SET version = 2"))
        assert ensure_schema(db) == 2
        assert current_version(db) == SCHEMA_VERSION
        with db.read() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("leases")}
        assert set(LEASE_HOLDER_COLUMNS) <= columns
    finally:
        db.close()
    store = target.open()
    try:
        held = store.recorded_lease("sf")
        assert held is not None and (held.run_id, held.token, held.holder, held.heartbeat_at) == (
            "r1",
            7,
            None,
            None,
        )
        with pytest.raises(LeaseHeldError):
            store.acquire_lease("sf", "r2", T0, timedelta(minutes=1), alive=lambda pid: False)
        taken = store.acquire_lease("sf", "r2", T0 + timedelta(minutes=15), timedelta(minutes=1))
        assert taken.token == 8 and taken.holder is not None
    finally:
        store.close()


def test_a_version_3_store_is_migrated_to_version_4_with_an_empty_owners_cache(target: Target) -> None:
    """A version 3 store gains the owners table, empty (the next full sweep fills it); its runs stay."""
    store = target.open()
    store.start_run(RunRecord("r1", "sf", "cli", "full", T0))
    store.close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_4(conn)
            conn.execute(text("DROP TABLE owners"))
            conn.execute(text("UPDATE schema_version SET version = 3"))
        assert ensure_schema(db) == 3
        assert current_version(db) == SCHEMA_VERSION == 9
        with db.read() as conn:
            assert "owners" in set(inspect(conn).get_table_names())
    finally:
        db.close()
    store = target.open()
    try:
        assert store.owners("sf") == [] and store.owners_refreshed_at("sf") is None
        assert store.get_run("r1") is not None
        store.replace_owners("sf", [Owner("005A", "Ann Lee", "ann@x.io", None, True)], T0)
        assert [o.name for o in store.owners("sf")] == ["Ann Lee"]
    finally:
        store.close()


def test_a_version_4_store_is_migrated_to_version_5_keeping_its_deal_states(target: Target) -> None:
    """A version 4 store gains the digest delivery ledger (empty) and a deal name on each deal state: the
    states it held stay, without a name until their deal's next run writes one."""
    store = target.open()
    lease = store.acquire_lease("sf", "r1", T0, timedelta(minutes=5))
    store.start_run(RunRecord("r1", "sf", "cli", "full", T0))
    store.checkpoint(lease, None, [], [DealState("006A", "005A", "needs_qualification", ("budget",), T0)], {})
    store.close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_4(conn)
            conn.execute(text("UPDATE schema_version SET version = 4"))
        assert ensure_schema(db) == 4
        assert current_version(db) == SCHEMA_VERSION == 9
        with db.read() as conn:
            inspector = inspect(conn)
            assert "digest_deliveries" in set(inspector.get_table_names())
            assert "deal_name" in {c["name"] for c in inspector.get_columns("deal_states")}
    finally:
        db.close()
    store = target.open()
    try:
        [kept] = store.flagged_deals("sf")
        assert (kept.deal_id, kept.missing, kept.deal_name) == ("006A", ("budget",), None)
        assert store.deliveries("sf", "2025-W10") == []
        lease = store.acquire_lease("sf", "r2", T0 + timedelta(minutes=10), timedelta(minutes=5))
        named = DealState("006A", "005A", "needs_qualification", ("budget",), T0 + timedelta(minutes=10))
        store.checkpoint(lease, None, [], [replace(named, deal_name="Acme renewal")], {})
        assert [d.deal_name for d in store.flagged_deals("sf")] == ["Acme renewal"]
    finally:
        store.close()


def test_a_version_5_store_is_migrated_to_version_6_keeping_its_audit_log(target: Target) -> None:
    """A version 5 store gains the audit row's actor and note and each deal state's snooze days: the rows it
    held stay (with none), and a snooze recorded after the upgrade is kept and read back."""
    store = target.open()
    lease = store.acquire_lease("sf", "r1", T0, timedelta(minutes=5))
    store.start_run(RunRecord("r1", "sf", "cli", "full", T0))
    change = StatusChange("006A", None, "needs_qualification", ("budget",), T0)
    store.checkpoint(
        lease, None, [change], [DealState("006A", "005A", "needs_qualification", ("budget",), T0)], {}
    )
    store.close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_5(conn)
            conn.execute(text("UPDATE schema_version SET version = 5"))
        assert ensure_schema(db) == 5
        assert current_version(db) == SCHEMA_VERSION == 9
    finally:
        db.close()
    store = target.open()
    try:
        [old] = store.audit("sf")
        assert (old.new_status, old.actor, old.note) == ("needs_qualification", None, None)
        later = T0 + timedelta(minutes=10)
        lease = store.acquire_lease("sf", "r2", later, timedelta(minutes=5))
        note = "Snoozed until 2025-04-01: budget cycle starts in April"
        snoozed = StatusChange(
            "006A", "needs_qualification", "snoozed", ("budget",), later, actor="005B", note=note
        )
        state = DealState(
            "006A",
            "005A",
            "snoozed",
            ("budget",),
            later,
            snooze_until=date(2025, 4, 1),
            snoozed_on=date(2025, 3, 10),
        )
        store.checkpoint(lease, None, [snoozed], [state], {})
        newest = store.audit("sf")[0]
        assert (newest.new_status, newest.actor, newest.note) == ("snoozed", "005B", note)
        assert store.snooze_days("sf", ["006A"]) == {"006A": (date(2025, 4, 1), date(2025, 3, 10))}
        assert store.expired_snoozes("sf", date(2025, 4, 1)) == []
        assert store.expired_snoozes("sf", date(2025, 4, 2)) == ["006A"]
    finally:
        store.close()


def test_a_version_6_store_is_migrated_to_version_7_keeping_its_runs(target: Target) -> None:
    """A version 6 store gains the inbound events, dirty deals and event totals tables, empty: its runs
    stay, and events recorded after the upgrade mark deals dirty and are counted."""
    store = target.open()
    store.start_run(RunRecord("r1", "hs", "cli", "full", T0))
    store.close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_6(conn)
            conn.execute(text("UPDATE schema_version SET version = 6"))
        assert ensure_schema(db) == 6
        assert current_version(db) == SCHEMA_VERSION == 9
        with db.read() as conn:
            assert {"inbound_events", "dirty_deals", "event_totals"} <= set(inspect(conn).get_table_names())
    finally:
        db.close()
    store = target.open()
    try:
        assert store.get_run("r1") is not None
        assert store.dirty_deals("hs", 10) == []
        assert store.event_counts("hs") == {"received": 0, "duplicates": 0, "echoes": 0, "dirty": 0}
        tally = store.record_events("hs", [InboundEvent("e1", "101", T0)], T0)
        assert tally == EventTally(received=1, duplicates=0, echoes=0, marked=1)
        assert store.dirty_deals("hs", 10) == ["101"]
    finally:
        store.close()


def test_a_version_7_store_is_migrated_to_version_8_keeping_its_marks(target: Target) -> None:
    """A version 7 store keeps its dirty marks (their event time unknown: no lag is recorded for them),
    and gains stream positions and lags: a mark made after the upgrade records its lag when cleared."""
    store = target.open()
    store.record_events("hs", [InboundEvent("e1", "101", T0)], T0)
    store.close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_7(conn)
            conn.execute(text("UPDATE schema_version SET version = 7"))
        assert ensure_schema(db) == 7
        assert current_version(db) == SCHEMA_VERSION == 9
    finally:
        db.close()
    store = target.open()
    try:
        assert store.dirty_deals("hs", 10) == ["101"]
        assert store.stream_position("sf") is None
        store.record_events("hs", [InboundEvent("e2", "102", T0)], T0 + timedelta(seconds=1))
        later = T0 + timedelta(seconds=4)
        assert store.clear_dirty("hs", ["101", "102"], marked_before=later, reassessed_at=later) == 2
        stats = store.lag_stats("hs", T0)
        assert (stats.count, stats.max) == (1, 4.0)
    finally:
        store.close()


def test_a_version_8_store_is_migrated_to_version_9_with_an_empty_connections_table(target: Target) -> None:
    """A version 8 store keeps its runs and gains an empty connections table that takes rows at once."""
    store = target.open()
    store.start_run(RunRecord("r1", "hs", "cli", "full", T0))
    store.close()
    db = _db(target)
    try:
        with db.write() as conn:
            _to_version_8(conn)
            conn.execute(text("UPDATE schema_version SET version = 8"))
        assert ensure_schema(db) == 8
        assert current_version(db) == SCHEMA_VERSION == 9
        with db.read() as conn:
            assert "connections" in set(inspect(conn).get_table_names())
    finally:
        db.close()
    store = target.open()
    try:
        assert store.get_run("r1") is not None
        assert store.stored_connections() == []
        assert store.add_connection("acme", "hubspot", {"host": "api.hubapi.com"}, T0, tenant="Acme")
        [row] = store.stored_connections()
        assert (row.name, row.crm, row.tenant, row.enabled) == ("acme", "hubspot", "Acme", True)
    finally:
        store.close()
