"""The task ledger: what bant-sync last did to each deal's follow-up task, keyed by sync key.

Rows are filed under the CRM account's identity (`salesforce:<org id>`, `hubspot:<portal id>`), like the
keys themselves, so renaming a connection keeps its ledger; rows a 0.1 install filed under the connection's
name are moved over by `rehome` on the first run that knows the identity.

The CRM is the truth about tasks: every run reads them by key before deciding anything
(worker.sync.task_sync).
The ledger guards what the CRM cannot tell us: an `intended` row is written before a create is sent, so a
create whose answer was lost is looked up (never re-sent blindly) even when its deal has since qualified;
and each row remembers the verdict (status, missing criteria) the task was last written with, so a task
is rewritten when the verdict changes, not whenever a person edits its subject.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Row, delete, select, update

from worker.state.engine import Database
from worker.state.schema import task_ledger


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One task as bant-sync last left it: intended (task_id None), open, or completed, and the verdict
    (`status`, `missing`) it was written with. `status` is None for rows written before version 0.2."""

    sync_key: str
    deal_id: str
    task_id: str | None
    state: LedgerState
    missing: tuple[str, ...] = ()
    status: str | None = None


class LedgerState(StrEnum):
    """A ledger row's task: create sent but not yet seen to land (intended), open, or completed."""

    INTENDED = "intended"
    OPEN = "open"
    COMPLETED = "completed"


STATES: frozenset[str] = frozenset(LedgerState)
_IN_CHUNK = 5000
"""Deal ids per IN (...) query: well under SQLite's and PostgreSQL's bound-parameter limits, and above
the largest page a connector reads (2,000), so one page is one query."""


def _entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        row.sync_key, row.deal_id, row.task_id, LedgerState(row.state), row.missing, row.status
    )


class StoreLedger:
    """The task ledger of one connection, stored in the state database. Every method takes a batch and
    is one transaction."""

    def __init__(self, db: Database, connection: str) -> None:
        self._db = db
        self._connection = connection

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert or replace these rows (by sync key), in one transaction. An `intended` row is recorded
        right before its create is sent; the others once the CRM answered."""
        if not entries:
            return
        for entry in entries:
            if entry.state not in STATES:
                raise ValueError(f"ledger state must be one of {sorted(STATES)}, got {entry.state!r}")
        stmt = self._db.insert(task_ledger)
        stmt = stmt.on_conflict_do_update(
            index_elements=[task_ledger.c.connection, task_ledger.c.sync_key],
            set_={name: stmt.excluded[name] for name in ("deal_id", "task_id", "state", "missing", "status")},
        )
        rows = {
            entry.sync_key: {
                "connection": self._connection,
                "sync_key": entry.sync_key,
                "deal_id": entry.deal_id,
                "task_id": entry.task_id,
                "state": str(entry.state),
                "missing": tuple(entry.missing),
                "status": entry.status,
            }
            for entry in entries
        }
        with self._db.write() as conn:
            conn.execute(stmt, list(rows.values()))

    def forget(self, sync_keys: Iterable[str]) -> None:
        """Drop these rows (a task re-keyed from the pre-0.2 key lives on under its new key)."""
        keys = sorted(set(sync_keys))
        if not keys:
            return
        with self._db.write() as conn:
            for start in range(0, len(keys), _IN_CHUNK):
                conn.execute(
                    delete(task_ledger).where(
                        task_ledger.c.connection == self._connection,
                        task_ledger.c.sync_key.in_(keys[start : start + _IN_CHUNK]),
                    )
                )

    def lookup(self, sync_keys: Iterable[str]) -> dict[str, LedgerEntry]:
        """The entries of those sync keys that the ledger holds, by key (one query per 5,000 keys)."""
        keys = sorted(set(sync_keys))
        found: dict[str, LedgerEntry] = {}
        with self._db.read() as conn:
            for start in range(0, len(keys), _IN_CHUNK):
                query = select(task_ledger).where(
                    task_ledger.c.connection == self._connection,
                    task_ledger.c.sync_key.in_(keys[start : start + _IN_CHUNK]),
                )
                found.update((row.sync_key, _entry(row)) for row in conn.execute(query).all())
        return found

    def entries_for(self, deal_ids: Iterable[str]) -> dict[str, list[LedgerEntry]]:
        """Every entry of each deal that has one, by deal id (one query per page of deals).

        The query names only the connection and the deal ids, so it is served by the (connection, deal_id)
        index; with a state filter or an ORDER BY, SQLite walks every task of the connection instead,
        which made each page cost as much as the whole ledger."""
        wanted = sorted(set(deal_ids))
        rows: list[Row[Any]] = []
        with self._db.read() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                query = select(task_ledger).where(
                    task_ledger.c.connection == self._connection,
                    task_ledger.c.deal_id.in_(wanted[start : start + _IN_CHUNK]),
                )
                rows.extend(conn.execute(query).all())
        rows.sort(key=lambda row: row.sync_key)
        found: dict[str, list[LedgerEntry]] = {}
        for row in rows:
            found.setdefault(row.deal_id, []).append(_entry(row))
        return found

    def open_tasks_for(self, deal_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """The open task of each deal that has one, by deal id."""
        return {
            deal_id: entry
            for deal_id, entries in self.entries_for(deal_ids).items()
            for entry in entries
            if entry.state == LedgerState.OPEN
        }

    def unsettled(self) -> dict[str, list[LedgerEntry]]:
        """Every open or intended entry of this connection, by deal id: a full sweep checks those whose
        deal it did not see (closed or deleted) and completes their tasks in the CRM."""
        query = select(task_ledger).where(
            task_ledger.c.connection == self._connection,
            task_ledger.c.state.in_([LedgerState.OPEN.value, LedgerState.INTENDED.value]),
        )
        found: dict[str, list[LedgerEntry]] = {}
        with self._db.read() as conn:
            for row in conn.execute(query).all():
                found.setdefault(row.deal_id, []).append(_entry(row))
        return found


def rehome(db: Database, old: str, new: str) -> int:
    """Move the ledger rows filed under `old` (a connection name) to `new` (its CRM identity), in one
    transaction; a row `new` already holds wins. Returns how many rows moved."""
    if old == new:
        return 0
    keys = task_ledger.c.sync_key
    with db.write() as conn:
        held = set(conn.execute(select(keys).where(task_ledger.c.connection == new)).scalars())
        mine = conn.execute(select(keys).where(task_ledger.c.connection == old)).scalars()
        stale = sorted(key for key in mine if key in held)
        for start in range(0, len(stale), _IN_CHUNK):
            chunk = stale[start : start + _IN_CHUNK]
            conn.execute(delete(task_ledger).where(task_ledger.c.connection == old, keys.in_(chunk)))
        moved = conn.execute(
            update(task_ledger).where(task_ledger.c.connection == old).values(connection=new)
        )
        return int(moved.rowcount or 0)
