"""The task ledger: intend → confirm → lookup/pending, per connection, in batches of one transaction each,
and open tasks per page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from connectors.registry import Confirmation, Intent, LedgerEntry
from worker.state import StateStore, UnknownRecordError


def _one(store: StateStore, connection: str, key: str) -> LedgerEntry | None:
    return store.ledger(connection).lookup([key]).get(key)


def test_intent_is_pending_until_confirmed(store: StateStore) -> None:
    """An intent has no task id and is listed as pending; confirming records the id and clears it."""
    ledger = store.ledger("hs")
    ledger.intend([Intent("k1", "deal-1", ("budget", "need"))])
    assert ledger.lookup(["k1"]) == {"k1": LedgerEntry("k1", "deal-1", None, "intended", ("budget", "need"))}
    assert ledger.pending() == [LedgerEntry("k1", "deal-1", None, "intended", ("budget", "need"))]
    ledger.confirm([Confirmation("k1", "task-9", "open", ("need",))])
    assert ledger.lookup(["k1"]) == {"k1": LedgerEntry("k1", "deal-1", "task-9", "open", ("need",))}
    assert ledger.pending() == []


def test_unknown_key_is_not_looked_up_and_cannot_be_confirmed(store: StateStore) -> None:
    """lookup leaves out unknown keys; a confirm naming one raises UnknownRecordError and records none of
    its batch."""
    ledger = store.ledger("hs")
    ledger.intend([Intent("known", "d", ())])
    assert ledger.lookup(["k", "known"]).keys() == {"known"}
    with pytest.raises(UnknownRecordError, match="intend"):
        ledger.confirm([Confirmation("known", "task-0", "open", ()), Confirmation("k", "task-1", "open", ())])
    assert _one(store, "hs", "known") == LedgerEntry("known", "d", None, "intended", ())


def test_confirm_state_is_validated(store: StateStore) -> None:
    """confirm only takes "open" or "completed"."""
    ledger = store.ledger("hs")
    ledger.intend([Intent("k", "d", ())])
    with pytest.raises(ValueError, match="open"):
        ledger.confirm([Confirmation("k", "t", "intended", ())])


def test_intend_again_replaces_a_completed_entry(store: StateStore) -> None:
    """A new intent on a key whose task was completed makes it pending again with no task id."""
    ledger = store.ledger("hs")
    ledger.intend([Intent("k", "d", ("budget",))])
    ledger.confirm([Confirmation("k", "t1", "completed", ())])
    ledger.intend([Intent("k", "d", ("timing",)), Intent("k2", "d2", ())])
    assert ledger.lookup(["k", "k2"]) == {
        "k": LedgerEntry("k", "d", None, "intended", ("timing",)),
        "k2": LedgerEntry("k2", "d2", None, "intended", ()),
    }


def test_ledgers_are_per_connection(store: StateStore) -> None:
    """The same sync key on two connections is two entries."""
    store.ledger("hs").intend([Intent("k", "d", ())])
    assert _one(store, "sf", "k") is None
    assert store.ledger("sf").pending() == []
    store.ledger("sf").intend([Intent("k", "other", ())])
    store.ledger("sf").confirm([Confirmation("k", "t", "open", ())])
    assert _one(store, "hs", "k") == LedgerEntry("k", "d", None, "intended", ())


@pytest.fixture
def statements(store: StateStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement.lstrip().split()[0].upper())

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_batch_is_one_transaction(store: StateStore, statements: list[str]) -> None:
    """Intending, confirming and looking up 100 tasks each take one transaction, not one per task."""
    ledger = store.ledger("hs")
    ledger.intend([Intent(f"k{n}", f"deal-{n}", ("need",)) for n in range(100)])
    ledger.confirm([Confirmation(f"k{n}", f"t{n}", "open", ()) for n in range(100)])
    found = ledger.lookup(f"k{n}" for n in range(100))
    assert len(found) == 100 and found["k7"] == LedgerEntry("k7", "deal-7", "t7", "open", ())
    if store._db.backend == "sqlite":
        assert statements.count("BEGIN") == 3
    assert statements.count("INSERT") <= 1 and statements.count("UPDATE") <= 1


def test_open_tasks_for_a_page_is_one_query(store: StateStore, statements: list[str]) -> None:
    """open_tasks_for returns only open tasks of the given deals, in one SELECT for a 2,000-deal page."""
    ledger = store.ledger("hs")
    ledger.intend([Intent(f"k{n}", f"deal-{n}", ()) for n in range(6)])
    ledger.confirm(
        [
            Confirmation("k0", "t0", "open", ("budget",)),
            Confirmation("k1", "t1", "completed", ()),
            Confirmation("k2", "t2", "open", ()),
        ]
    )
    store.ledger("other").intend([Intent("x", "deal-0", ())])
    store.ledger("other").confirm([Confirmation("x", "tx", "open", ())])
    statements.clear()
    page = [f"deal-{n}" for n in range(2000)]
    found = ledger.open_tasks_for(page)
    assert found == {
        "deal-0": LedgerEntry("k0", "deal-0", "t0", "open", ("budget",)),
        "deal-2": LedgerEntry("k2", "deal-2", "t2", "open", ()),
    }
    assert statements.count("SELECT") == 1
    assert store.open_tasks_for("hs", iter(["deal-2", "deal-2"])) == {"deal-2": found["deal-2"]}
    assert ledger.open_tasks_for([]) == {}


def test_open_tasks_lists_every_open_task_of_the_connection(store: StateStore) -> None:
    """open_tasks returns all open entries of this connection by deal id, nothing intended or completed."""
    ledger = store.ledger("hs")
    ledger.intend([Intent(f"k{n}", f"deal-{n}", ()) for n in range(4)])
    ledger.confirm(
        [
            Confirmation("k0", "t0", "open", ()),
            Confirmation("k1", "t1", "completed", ()),
            Confirmation("k3", "t3", "open", ("need",)),
        ]
    )
    store.ledger("other").intend([Intent("x", "deal-9", ())])
    store.ledger("other").confirm([Confirmation("x", "tx", "open", ())])
    assert ledger.open_tasks() == {
        "deal-0": LedgerEntry("k0", "deal-0", "t0", "open", ()),
        "deal-3": LedgerEntry("k3", "deal-3", "t3", "open", ("need",)),
    }


def test_open_tasks_for_a_page_is_served_by_the_deal_index(store: StateStore) -> None:
    """On SQLite the page query searches the (connection, deal_id) index, not every task of the
    connection: with the state filter or ORDER BY it scanned the whole ledger once per page."""
    if store._db.backend != "sqlite":
        pytest.skip("the query plan checked here is SQLite's")
    ledger = store.ledger("hs")
    ledger.intend([Intent(f"k{n}", f"deal-{n}", ()) for n in range(50)])
    ledger.confirm([Confirmation(f"k{n}", f"t{n}", "open", ()) for n in range(0, 50, 2)])
    sent: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: object, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        found = ledger.open_tasks_for(f"deal-{n}" for n in range(10))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sorted(found) == [f"deal-{n}" for n in (0, 2, 4, 6, 8)]
    ((statement, parameters),) = sent
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
    assert "ix_task_ledger_connection_deal" in plan, plan
