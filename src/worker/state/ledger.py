"""The task ledger: a durable record of every follow-up task bant-sync creates, keyed by sync key.

A connector that cannot create tasks idempotently in the CRM (HubSpot has no upsert by property) writes
`intend` before sending a create and `confirm` once the CRM answered with the task id. An intent still
pending after a crash or a timeout is reconciled by searching the CRM for the sync key before any
re-create (DESIGN.md §6 "Tasks effectively once"). Implements connectors.registry.TaskLedger.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, select, update

from connectors.registry import LedgerEntry, TaskLedger
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

    def intend(self, sync_key: str, deal_id: str, missing: tuple[str, ...]) -> None:
        """Record that a task with `sync_key` is about to be created. Call it right before each create:
        it replaces whatever the key recorded before (e.g. a completed task) with a pending intent."""
        values = {"deal_id": deal_id, "task_id": None, "state": INTENDED, "missing": tuple(missing)}
        stmt = self._db.insert(task_ledger).values(connection=self._connection, sync_key=sync_key, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[task_ledger.c.connection, task_ledger.c.sync_key], set_=values
        )
        with self._db.write() as conn:
            conn.execute(stmt)

    def confirm(self, sync_key: str, task_id: str, state: str, missing: tuple[str, ...]) -> None:
        """Record the CRM's task id and whether the task is open or completed."""
        if state not in CONFIRMED_STATES:
            raise ValueError(f"ledger state must be {OPEN!r} or {COMPLETED!r}, got {state!r}")
        stmt = (
            update(task_ledger)
            .where(task_ledger.c.connection == self._connection, task_ledger.c.sync_key == sync_key)
            .values(task_id=task_id, state=state, missing=tuple(missing))
        )
        with self._db.write() as conn:
            if conn.execute(stmt).rowcount == 0:
                raise UnknownRecordError(
                    f"task sync key {sync_key!r} is not in the ledger of connection {self._connection!r}: "
                    f"call intend(sync_key, deal_id, missing) before creating the task"
                )

    def lookup(self, sync_key: str) -> LedgerEntry | None:
        query = select(task_ledger).where(
            task_ledger.c.connection == self._connection, task_ledger.c.sync_key == sync_key
        )
        with self._db.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _entry(row)

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
        """The open task of each deal that has one, by deal id (one query per page of deals)."""
        wanted = sorted(set(deal_ids))
        found: dict[str, LedgerEntry] = {}
        with self._db.read() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                query = (
                    select(task_ledger)
                    .where(
                        task_ledger.c.connection == self._connection,
                        task_ledger.c.state == OPEN,
                        task_ledger.c.deal_id.in_(wanted[start : start + _IN_CHUNK]),
                    )
                    .order_by(task_ledger.c.sync_key)
                )
                for row in conn.execute(query).all():
                    found[row.deal_id] = _entry(row)
        return found

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
