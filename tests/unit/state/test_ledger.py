"""The task ledger: record / forget / lookup by sync key, entries per page of deals, what is unsettled; per
connection, one transaction per batch, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from worker.state import LedgerEntry, StateStore


def entry(
    n: int,
    state: str = "open",
    missing: tuple[str, ...] = (),
    status: str | None = "needs_qualification",
    deal: str | None = None,
) -> LedgerEntry:
    return LedgerEntry(
        f"k{n}", deal or f"deal-{n}", None if state == "intended" else f"t{n}", state, missing, status
    )


def test_recorded_rows_are_looked_up_by_key(store: StateStore) -> None:
    """record stores every field of a row (verdict included; status None for a pre-0.2 row); lookup
    returns the rows of the keys it holds and leaves unknown keys out."""
    ledger = store.ledger("hs")
    rows = [
        entry(1, "intended", ("budget", "need")),
        entry(2, "open", ("timing",), "qualify_out"),
        entry(3, "completed", (), None),
    ]
    ledger.record(rows)
    assert ledger.lookup(["k1", "k2", "k3", "k9"]) == {row.sync_key: row for row in rows}
    assert ledger.lookup([]) == {}


def test_recording_a_key_again_replaces_its_row(store: StateStore) -> None:
    """An intended row becomes open with its task id, then completed; the latest record is what lookup
    returns, and a batch naming one key twice keeps its last row."""
    ledger = store.ledger("hs")
    ledger.record([entry(1, "intended", ("budget",))])
    ledger.record([entry(1, "open", ("budget",))])
    assert ledger.lookup(["k1"])["k1"].task_id == "t1"
    ledger.record([entry(1, "open", ("need",)), entry(1, "completed", ("need",), "qualified")])
    assert ledger.lookup(["k1"]) == {"k1": entry(1, "completed", ("need",), "qualified")}


def test_an_unknown_state_is_refused_and_nothing_of_its_batch_is_recorded(store: StateStore) -> None:
    """record only takes intended, open or completed; a batch holding another state records no row."""
    ledger = store.ledger("hs")
    with pytest.raises(ValueError, match="intended"):
        ledger.record([entry(1), LedgerEntry("k2", "deal-2", "t2", "done")])
    assert ledger.lookup(["k1", "k2"]) == {}


def test_forget_drops_only_the_keys_named(store: StateStore) -> None:
    """forget removes the rows of those keys in this connection; unknown keys and an empty list are fine."""
    ledger = store.ledger("hs")
    ledger.record([entry(1), entry(2), entry(3)])
    store.ledger("sf").record([entry(1)])
    ledger.forget(["k1", "k3", "k9"])
    ledger.forget([])
    assert set(ledger.lookup(["k1", "k2", "k3"])) == {"k2"}
    assert set(store.ledger("sf").lookup(["k1"])) == {"k1"}


def test_ledgers_are_per_connection(store: StateStore) -> None:
    """The same sync key on two connections is two rows, each changed only through its own ledger."""
    store.ledger("hs").record([entry(1, "intended")])
    assert store.ledger("sf").lookup(["k1"]) == {}
    store.ledger("sf").record([entry(1, "open", deal="other")])
    assert store.ledger("hs").lookup(["k1"]) == {"k1": entry(1, "intended")}
    assert store.ledger("sf").unsettled() == {"other": [entry(1, "open", deal="other")]}


def test_entries_for_lists_every_row_of_each_deal_sorted_by_key(store: StateStore) -> None:
    """entries_for gives each deal that has rows all of them (any state, ordered by sync key) and leaves
    out deals without rows and rows of other connections."""
    ledger = store.ledger("hs")
    legacy = LedgerEntry("bs1-old", "deal-1", "t0", "open", ("budget",), None)
    ledger.record([entry(1, "completed"), legacy, entry(2, "intended"), entry(3, "open")])
    store.ledger("other").record([entry(9, deal="deal-1")])
    found = ledger.entries_for(iter(["deal-1", "deal-2", "deal-1", "deal-7"]))
    assert found == {"deal-1": [legacy, entry(1, "completed")], "deal-2": [entry(2, "intended")]}
    assert ledger.entries_for([]) == {}


def test_open_tasks_for_gives_only_open_rows(store: StateStore) -> None:
    """open_tasks_for (and the store's shortcut) return the open row of each deal, nothing intended or
    completed."""
    ledger = store.ledger("hs")
    ledger.record([entry(0, "open", ("budget",)), entry(1, "completed"), entry(2, "intended"), entry(3)])
    page = [f"deal-{n}" for n in range(4)]
    assert ledger.open_tasks_for(page) == {"deal-0": entry(0, "open", ("budget",)), "deal-3": entry(3)}
    assert store.open_tasks_for("hs", ["deal-3", "deal-3"]) == {"deal-3": entry(3)}


def test_unsettled_lists_open_and_intended_rows_of_the_connection(store: StateStore) -> None:
    """unsettled returns, by deal, every open or intended row of this connection (what a full sweep checks
    for deals it no longer sees), never a completed one."""
    ledger = store.ledger("hs")
    ledger.record([entry(0), entry(1, "completed"), entry(2, "intended"), entry(3, deal="deal-0")])
    store.ledger("other").record([entry(5)])
    assert ledger.unsettled() == {
        "deal-0": [entry(0), entry(3, deal="deal-0")],
        "deal-2": [entry(2, "intended")],
    }


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
    """Recording, looking up and forgetting 100 rows each take one transaction and one statement, not one
    per row."""
    ledger = store.ledger("hs")
    ledger.record([entry(n) for n in range(100)])
    found = ledger.lookup(f"k{n}" for n in range(100))
    ledger.forget(f"k{n}" for n in range(100))
    assert len(found) == 100 and found["k7"] == entry(7)
    if store._db.backend == "sqlite":
        assert statements.count("BEGIN") == 3
    assert statements.count("INSERT") == 1 and statements.count("DELETE") == 1
    assert ledger.lookup(["k7"]) == {}


def test_more_keys_than_one_in_list_holds_are_split(store: StateStore, statements: list[str]) -> None:
    """5,001 keys are two IN (...) queries for lookup and two deletes for forget, and every key counts."""
    ledger = store.ledger("hs")
    ledger.record([entry(n) for n in range(5001)])
    statements.clear()
    assert len(ledger.lookup(f"k{n}" for n in range(5001))) == 5001
    assert statements.count("SELECT") == 2
    ledger.forget(f"k{n}" for n in range(5001))
    assert statements.count("DELETE") == 2
    assert ledger.unsettled() == {}


def test_entries_for_a_page_is_one_query(store: StateStore, statements: list[str]) -> None:
    """entries_for a 2,000-deal page is one SELECT."""
    ledger = store.ledger("hs")
    ledger.record([entry(n) for n in range(6)])
    statements.clear()
    found = ledger.entries_for(f"deal-{n}" for n in range(2000))
    assert sorted(found) == [f"deal-{n}" for n in range(6)]
    assert statements.count("SELECT") == 1


def test_entries_for_a_page_is_served_by_the_deal_index(store: StateStore) -> None:
    """On SQLite the page query searches the (connection, deal_id) index, not every task of the
    connection: with the state filter or ORDER BY it scanned the whole ledger once per page."""
    if store._db.backend != "sqlite":
        pytest.skip("the query plan checked here is SQLite's")
    ledger = store.ledger("hs")
    ledger.record([entry(n, "open" if n % 2 == 0 else "intended") for n in range(50)])
    sent: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: object, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        found = ledger.entries_for(f"deal-{n}" for n in range(10))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sorted(found) == [f"deal-{n}" for n in range(10)]
    ((statement, parameters),) = sent
    with engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
    assert "ix_task_ledger_connection_deal" in plan, plan


def test_rows_filed_under_a_connection_name_move_to_the_crm_identity(store: StateStore) -> None:
    """rehome_ledger moves a 0.1 ledger (filed under the connection's name) to the CRM identity in one go;
    where the identity already holds a key, its row wins; a second call moves nothing."""
    store.ledger("hubspot").record([entry(1), entry(2, "completed")])
    store.ledger("hubspot:42").record([entry(2, "open", ("need",))])
    assert store.rehome_ledger("hubspot", "hubspot:42") == 1
    assert store.ledger("hubspot").lookup(["k1", "k2"]) == {}
    moved = store.ledger("hubspot:42").lookup(["k1", "k2"])
    assert moved == {"k1": entry(1), "k2": entry(2, "open", ("need",))}
    assert store.rehome_ledger("hubspot", "hubspot:42") == 0
    assert store.rehome_ledger("hubspot:42", "hubspot:42") == 0
