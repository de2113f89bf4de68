"""Opening the state database: which URLs are accepted, per-backend connection setup, and transactions.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout, and every write transaction
starts with `BEGIN IMMEDIATE` so it takes the write lock up front instead of failing on upgrade halfway.
pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN is the one sent
(SQLAlchemy docs, dialects/sqlite "Enabling Non-Legacy SQLite Transactional Modes").
PostgreSQL goes through psycopg 3; row locks (`SELECT ... FOR UPDATE`) serialise writers per connection.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from worker.state.errors import StateConfigError, StateUnavailableError

_POSTGRES_DRIVERS = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BEGIN_MODE = "bant_sqlite_begin"


def normalise_url(url: str) -> URL:
    """The SQLAlchemy URL for a state URL: plain `postgresql://` (or `postgres://`) uses psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StateConfigError(
            "the state store URL is not a database URL: use sqlite:////absolute/path/state.db or "
            "postgresql://user@host:5432/dbname"
        ) from exc
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed
    raise StateConfigError(
        f"unsupported state store URL {display(parsed)}: use sqlite:////absolute/path/state.db or "
        f"postgresql://user@host:5432/dbname"
    )


def display(url: URL) -> str:
    """The URL as it may appear in messages and logs: the password hidden."""
    return url.render_as_string(hide_password=True)


_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def display_text(url: str) -> str:
    """`display` for a URL given as text, even one SQLAlchemy cannot parse (its password still hidden)."""
    try:
        return display(make_url(url))
    except ArgumentError:
        return _USERINFO_PASSWORD.sub(r"\1***@", url)


def with_password(url: str, password: str) -> str:
    """`url` with `password` set (replacing none: the loader refuses a URL that already holds one)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # refused by normalise_url when the store opens, with a message that hides the password
    return parsed.set(password=password).render_as_string(hide_password=False)


@dataclass(frozen=True)
class Database:
    """An engine plus the knowledge of which backend it talks to. Thread-safe (the engine pools)."""

    engine: Engine
    backend: str
    where: str
    busy_timeout: float

    @classmethod
    def open(
        cls, url: str, *, schema: str | None = None, busy_timeout: float = 10.0, connect_timeout: int = 5
    ) -> Database:
        parsed = normalise_url(url)
        if parsed.drivername.startswith("sqlite"):
            if schema is not None:
                raise StateConfigError("the state store `schema` option applies to PostgreSQL only")
            engine = _sqlite_engine(parsed, busy_timeout)
            return cls(engine, "sqlite", display(parsed), busy_timeout)
        connect_args: dict[str, Any] = {"connect_timeout": connect_timeout}
        if schema is not None:
            if not _SCHEMA_NAME.match(schema):
                raise StateConfigError(
                    f"state store schema {schema!r} is not a plain PostgreSQL identifier: use letters, "
                    f"digits and underscores, starting with a letter"
                )
            connect_args["options"] = f"-c search_path={schema}"
        engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True)
        return cls(engine, "postgresql", display(parsed), busy_timeout)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write; on SQLite it holds the database write lock from its start."""
        with self._guard(), self.engine.connect() as conn:
            if self.backend == "sqlite":
                conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (a consistent snapshot on both backends)."""
        with self._guard(), self.engine.connect() as conn, conn.begin():
            yield conn

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that supports ON CONFLICT (upserts) on this backend."""
        if self.backend == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def check_schema_exists(self) -> None:
        """On PostgreSQL, fail clearly if the schema named in search_path does not exist."""
        if self.backend != "postgresql":
            return
        with self.read() as conn:
            current = conn.execute(text("SELECT current_schema()")).scalar()
        if current is None:
            raise StateConfigError(
                f"the PostgreSQL schema set for the state store does not exist in {self.where}: create it "
                f"(CREATE SCHEMA name) or remove the schema option"
            )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else "no answer"
            hint = (
                f"no other process should hold the write lock longer than busy_timeout ({self.busy_timeout}s)"
                if self.backend == "sqlite"
                else "check that the server is running and reachable"
            )
            raise StateUnavailableError(
                f"the state store at {self.where} failed ({type(exc.orig).__name__}: {reason}); {hint}"
            ) from exc


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def create_private_file(path: Path) -> None:
    """Create the SQLite file (and the directories missing above it) readable by its owner only, whatever
    the umask: it holds deal ids, owners and run history. An existing file or directory is left as is."""
    try:
        missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=PRIVATE_DIR_MODE)
            except FileExistsError:
                continue
            directory.chmod(PRIVATE_DIR_MODE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise StateConfigError(
            f"cannot create the state database {path} ({exc.strerror}): set state.dir to a directory "
            f"this user may write"
        ) from None
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory and not url.query.get("uri"):
        create_private_file(Path(database).expanduser())
    connect_args: dict[str, Any] = {"timeout": busy_timeout, "check_same_thread": False}
    if in_memory:
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, connect_args=connect_args)
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL loses no commit when the process is killed, only on OS crash or power loss
        # (sqlite.org/pragma.html#pragma_synchronous).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_MODE, 'DEFERRED')}")

    return engine
