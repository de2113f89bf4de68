"""The task ledger: a durable record of every follow-up task bant-sync creates, keyed by sync key.

A connector that cannot create tasks idempotently in the CRM (HubSpot has no upsert by property) writes
`intend` before sending a batch of creates and `confirm` once the CRM answered with the task ids (one
transaction each per batch). An intent still pending after a crash or a timeout is reconciled by looking
the sync key up in the CRM before any re-create (DESIGN.md §6 "Tasks effectively once"). Implements
connectors.registry.TaskLedger.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update

from connectors.registry import Confirmation, Intent, LedgerEntry, TaskLedger
from worker.state.engine import Database
from worker.state.errors import UnknownRecordError
from worker.state.schema import task_ledger

INTENDED = "intended"
OPEN = "open"
COMPLETED = "completed"
CONFIRMED_STATES = frozenset({OPEN, COMPLETED})
_IN_CHUNK = 5000
"""Deal ids per IN (...) query: well under SQLite's and PostgreSQL's bound-parameter limits, and above
the largest page a connector reads (2,000), so one page is one query."""


def _entry(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(row.sync_key, row.deal_id, row.task_id, row.state, row.missing)


class StoreLedger:
    """The TaskLedger of one connection, stored in the state database."""

    def __init__(self, db: Database, connection: str) -> None:
        self._db = db
        self._connection = connection

    def intend(self, intents: Sequence[Intent]) -> None:
        """Record, in one transaction, that tasks with these sync keys are about to be created. Call it right
        before sending the creates: each replaces whatever its key recorded before (e.g. a completed task)
        with a pending intent."""
        if not intents:
            return
        stmt = self._db.insert(task_ledger)
        stmt = stmt.on_conflict_do_update(
            index_elements=[task_ledger.c.connection, task_ledger.c.sync_key],
            set_={name: stmt.excluded[name] for name in ("deal_id", "task_id", "state", "missing")},
        )
        rows = {
            intent.sync_key: {
                "connection": self._connection,
                "sync_key": intent.sync_key,
                "deal_id": intent.deal_id,
                "task_id": None,
                "state": INTENDED,
                "missing": tuple(intent.missing),
            }
            for intent in intents
        }
        with self._db.write() as conn:
            conn.execute(stmt, list(rows.values()))

    def confirm(self, confirmations: Sequence[Confirmation]) -> None:
        """Record, in one transaction, the CRM's task ids and whether each task is open or completed."""
        if not confirmations:
            return
        for confirmation in confirmations:
            if confirmation.state not in CONFIRMED_STATES:
                raise ValueError(
                    f"ledger state must be {OPEN!r} or {COMPLETED!r}, got {confirmation.state!r}"
                )
        stmt = (
            update(task_ledger)
            .where(task_ledger.c.connection == self._connection, task_ledger.c.sync_key == bindparam("key"))
            .values(task_id=bindparam("task"), state=bindparam("to_state"), missing=bindparam("to_missing"))
        )
        rows = [
            {"key": c.sync_key, "task": c.task_id, "to_state": c.state, "to_missing": tuple(c.missing)}
            for c in confirmations
        ]
        with self._db.write() as conn:
            unknown = sorted(
                {c.sync_key for c in confirmations}
                - set(self._known(conn, [c.sync_key for c in confirmations]))
            )
            if unknown:
                raise UnknownRecordError(
                    f"task sync key {unknown[0]!r} is not in the ledger of connection {self._connection!r}: "
                    f"call intend() with it before creating the task"
                )
            conn.execute(stmt, rows)

    def _known(self, conn: Connection, sync_keys: Iterable[str]) -> Iterator[str]:
        keys = sorted(set(sync_keys))
        for start in range(0, len(keys), _IN_CHUNK):
            query = select(task_ledger.c.sync_key).where(
                task_ledger.c.connection == self._connection,
                task_ledger.c.sync_key.in_(keys[start : start + _IN_CHUNK]),
            )
            yield from conn.execute(query).scalars()

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

    def pending(self) -> list[LedgerEntry]:
        """Intents never confirmed: creates whose outcome is unknown, to reconcile by key."""
        query = (
            select(task_ledger)
            .where(task_ledger.c.connection == self._connection, task_ledger.c.state == INTENDED)
            .order_by(task_ledger.c.sync_key)
        )
        with self._db.read() as conn:
            return [_entry(row) for row in conn.execute(query).all()]

    def open_tasks_for(self, deal_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """The open task of each deal that has one, by deal id (one query per page of deals).

        The query names only the connection and the deal ids, so it is served by the (connection, deal_id)
        index; with a state filter or an ORDER BY, SQLite walks every open task of the connection instead,
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
        return {row.deal_id: _entry(row) for row in rows if row.state == OPEN}

    def open_tasks(self) -> dict[str, LedgerEntry]:
        """Every open task of this connection by deal id: a full sweep completes those whose deal it did
        not see (the deal closed or was deleted)."""
        query = select(task_ledger).where(
            task_ledger.c.connection == self._connection, task_ledger.c.state == OPEN
        )
        with self._db.read() as conn:
            return {row.deal_id: _entry(row) for row in conn.execute(query).all()}


def _conforms(ledger: StoreLedger) -> TaskLedger:
    """Checked by mypy: StoreLedger satisfies the connectors' TaskLedger protocol."""
    return ledger
