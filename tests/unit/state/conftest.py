"""Backends for the state store tests: SQLite in tmp_path, and PostgreSQL in a throwaway schema per test.

PostgreSQL comes from BANT_SYNC_TEST_POSTGRES_URL (default postgresql://127.0.0.1:5432/test); if it cannot
be reached (tried once per session, 2 s connect timeout) its tests skip saying how to point them at one.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from worker.state import StateStore

PG_ENV = "BANT_SYNC_TEST_POSTGRES_URL"
PG_DEFAULT = "postgresql://127.0.0.1:5432/test"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Target:
    """Where a test's store lives; `open()` gives a fresh StateStore on it (one per thread/process)."""

    backend: str
    url: str
    schema: str | None = None

    def open(self, busy_timeout: float = 10.0) -> StateStore:
        return StateStore.open(self.url, schema=self.schema, busy_timeout=busy_timeout)


def pg_url() -> str:
    return os.environ.get(PG_ENV, PG_DEFAULT)


def libpq_url(url: str) -> str:
    """The URL as psycopg (libpq) takes it: without SQLAlchemy's `+psycopg` driver suffix."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@functools.cache
def pg_unreachable(url: str) -> bool:
    try:
        psycopg.connect(libpq_url(url), connect_timeout=2).close()
    except psycopg.Error:
        return True
    return False


def require_postgres() -> str:
    url = pg_url()
    if pg_unreachable(url):
        shown = make_url(url).render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL not reachable at {shown}: set {PG_ENV} to run these")
    return url


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL schema `t_<random>` (url, schema), dropped with everything in it afterwards."""
    url = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield url, schema
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """The test's database on each backend in turn."""
    if request.param == "sqlite":
        yield Target("sqlite", f"sqlite:///{tmp_path}/state.db")
        return
    url, schema = request.getfixturevalue("pg_schema")
    yield Target("postgresql", url, schema)


@pytest.fixture
def store(target: Target) -> Iterator[StateStore]:
    opened = target.open()
    try:
        yield opened
    finally:
        opened.close()
