"""Opening the database: URL rules, secrets kept out of messages, SQLite locking setup."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from worker.state import StateConfigError, StateStore, StateUnavailableError
from worker.state.engine import Database, normalise_url

from .conftest import T0, require_postgres


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://bant@db.internal:5432/state", "postgresql+psycopg"),
        ("postgres://db.internal/state", "postgresql+psycopg"),
        ("postgresql+psycopg://db.internal/state", "postgresql+psycopg"),
        ("sqlite:////var/lib/bant-sync/state.db", "sqlite"),
        ("sqlite://", "sqlite"),
    ],
    ids=["postgresql", "postgres-alias", "explicit-psycopg", "sqlite-file", "sqlite-memory"],
)
def test_accepted_urls(url: str, driver: str) -> None:
    """Plain PostgreSQL URLs are rewritten to the psycopg 3 driver; SQLite URLs pass through."""
    assert normalise_url(url).drivername == driver


@pytest.mark.parametrize(
    "url",
    ["mysql://bant:hunter2@db/state", "postgresql+psycopg2://bant:hunter2@db/state", "not a url"],
    ids=["mysql", "psycopg2", "garbage"],
)
def test_refused_urls_say_what_works_without_the_password(url: str) -> None:
    """Unsupported URLs are refused with the accepted forms, and never echo the password."""
    with pytest.raises(StateConfigError) as caught:
        normalise_url(url)
    assert "sqlite:////" in str(caught.value) and "postgresql://" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "schema", "message"),
    [
        ("sqlite:////tmp/x.db", "s1", "PostgreSQL only"),
        ("postgresql://127.0.0.1:1/test", "x; DROP TABLE runs", "plain PostgreSQL identifier"),
        ("postgresql://127.0.0.1:1/test", "1abc", "plain PostgreSQL identifier"),
    ],
    ids=["schema-on-sqlite", "injection", "leading-digit"],
)
def test_bad_schema_option(url: str, schema: str, message: str) -> None:
    """The schema option is PostgreSQL-only and must be a plain identifier."""
    with pytest.raises(StateConfigError, match=message):
        StateStore.open(url, schema=schema)


def test_unreachable_postgres_is_a_clear_error_without_the_password() -> None:
    """A server that refuses connections gives StateUnavailableError naming the host, hiding the password."""
    with pytest.raises(StateUnavailableError) as caught:
        StateStore.open("postgresql://bant:hunter2@127.0.0.1:1/test", connect_timeout=2)
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "check that the server is running" in message
    assert "hunter2" not in message


@pytest.mark.postgres
def test_missing_postgres_schema_is_a_clear_error() -> None:
    """Pointing at a schema that does not exist says to create it."""
    url = require_postgres()
    with pytest.raises(StateConfigError, match="CREATE SCHEMA"):
        StateStore.open(url, schema="t_does_not_exist_4f1c")


def test_sqlite_creates_the_state_dir_and_uses_wal(tmp_path: Path) -> None:
    """The SQLite file's directory is created; connections run in WAL mode with the busy timeout set."""
    path = tmp_path / "nested" / "dir" / "state.db"
    db = Database.open(f"sqlite:///{path}", busy_timeout=2.5)
    try:
        with db.read() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 2500
        assert path.parent.is_dir()
    finally:
        db.close()


def test_sqlite_in_memory_store_works(tmp_path: Path) -> None:
    """`sqlite://` gives a working in-memory store (single process)."""
    store = StateStore.open("sqlite://")
    try:
        store.acquire_lease("sf", "r1", T0, timedelta(hours=1))
        assert store.lease_holder("sf", T0) is not None
    finally:
        store.close()


def test_sqlite_write_takes_the_lock_at_begin_and_readers_are_not_blocked(tmp_path: Path) -> None:
    """A write transaction holds the write lock from BEGIN (IMMEDIATE): a second writer waits out its
    busy timeout and gets StateUnavailableError, while readers still read (WAL)."""
    url = f"sqlite:///{tmp_path}/state.db"
    StateStore.open(url).close()
    holder, other = Database.open(url), Database.open(url, busy_timeout=0.05)
    inside, done = threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        with holder.write():
            inside.set()
            done.wait(10)

    thread = threading.Thread(target=hold_write_lock)
    thread.start()
    try:
        assert inside.wait(10)
        with pytest.raises(StateUnavailableError, match="busy_timeout"), other.write():
            pass
        with other.read() as conn:
            assert conn.execute(text("SELECT count(*) FROM leases")).scalar() == 0
    finally:
        done.set()
        thread.join(10)
        holder.close()
        other.close()
