"""The task ledger: intend → confirm → lookup/pending, per connection, and open tasks per page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event

from connectors.registry import LedgerEntry
from worker.state import StateStore, UnknownRecordError


def test_intent_is_pending_until_confirmed(store: StateStore) -> None:
    """An intent has no task id and is listed as pending; confirming records the id and clears it."""
    ledger = store.ledger("hs")
    ledger.intend("k1", "deal-1", ("budget", "need"))
    assert ledger.lookup("k1") == LedgerEntry("k1", "deal-1", None, "intended", ("budget", "need"))
    assert ledger.pending() == [LedgerEntry("k1", "deal-1", None, "intended", ("budget", "need"))]
    ledger.confirm("k1", "task-9", "open", ("need",))
    assert ledger.lookup("k1") == LedgerEntry("k1", "deal-1", "task-9", "open", ("need",))
    assert ledger.pending() == []


def test_unknown_key_looks_up_none_and_cannot_be_confirmed(store: StateStore) -> None:
    """lookup of an unknown key is None; confirm without intend raises UnknownRecordError."""
    ledger = store.ledger("hs")
    assert ledger.lookup("k") is None
    with pytest.raises(UnknownRecordError, match="intend"):
        ledger.confirm("k", "task-1", "open", ())


def test_confirm_state_is_validated(store: StateStore) -> None:
    """confirm only takes "open" or "completed"."""
    ledger = store.ledger("hs")
    ledger.intend("k", "d", ())
    with pytest.raises(ValueError, match="open"):
        ledger.confirm("k", "t", "intended", ())


def test_intend_again_replaces_a_completed_entry(store: StateStore) -> None:
    """A new intent on a key whose task was completed makes it pending again with no task id."""
    ledger = store.ledger("hs")
    ledger.intend("k", "d", ("budget",))
    ledger.confirm("k", "t1", "completed", ())
    ledger.intend("k", "d", ("timing",))
    assert ledger.lookup("k") == LedgerEntry("k", "d", None, "intended", ("timing",))


def test_ledgers_are_per_connection(store: StateStore) -> None:
    """The same sync key on two connections is two entries."""
    store.ledger("hs").intend("k", "d", ())
    assert store.ledger("sf").lookup("k") is None
    assert store.ledger("sf").pending() == []
    store.ledger("sf").intend("k", "other", ())
    store.ledger("sf").confirm("k", "t", "open", ())
    assert store.ledger("hs").lookup("k") == LedgerEntry("k", "d", None, "intended", ())


@pytest.fixture
def count_selects(store: StateStore) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def test_open_tasks_for_a_page_is_one_query(store: StateStore, count_selects: list[str]) -> None:
    """open_tasks_for returns only open tasks of the given deals, in one SELECT for a 2,000-deal page."""
    ledger = store.ledger("hs")
    for n in range(6):
        ledger.intend(f"k{n}", f"deal-{n}", ())
    ledger.confirm("k0", "t0", "open", ("budget",))
    ledger.confirm("k1", "t1", "completed", ())
    ledger.confirm("k2", "t2", "open", ())
    store.ledger("other").intend("x", "deal-0", ())
    store.ledger("other").confirm("x", "tx", "open", ())
    count_selects.clear()
    page = [f"deal-{n}" for n in range(2000)]
    found = ledger.open_tasks_for(page)
    assert found == {
        "deal-0": LedgerEntry("k0", "deal-0", "t0", "open", ("budget",)),
        "deal-2": LedgerEntry("k2", "deal-2", "t2", "open", ()),
    }
    assert len(count_selects) == 1
    assert store.open_tasks_for("hs", iter(["deal-2", "deal-2"])) == {"deal-2": found["deal-2"]}
    assert ledger.open_tasks_for([]) == {}


def test_open_tasks_lists_every_open_task_of_the_connection(store: StateStore) -> None:
    """open_tasks returns all open entries of this connection by deal id, nothing intended or completed."""
    ledger = store.ledger("hs")
    for n in range(4):
        ledger.intend(f"k{n}", f"deal-{n}", ())
    ledger.confirm("k0", "t0", "open", ())
    ledger.confirm("k1", "t1", "completed", ())
    ledger.confirm("k3", "t3", "open", ("need",))
    store.ledger("other").intend("x", "deal-9", ())
    store.ledger("other").confirm("x", "tx", "open", ())
    assert ledger.open_tasks() == {
        "deal-0": LedgerEntry("k0", "deal-0", "t0", "open", ()),
        "deal-3": LedgerEntry("k3", "deal-3", "t3", "open", ("need",)),
    }
