"""The owners cache: replaced whole per connection, read back by name, dated by its refresh."""

from __future__ import annotations

from datetime import timedelta

from connectors.model import Owner

from .conftest import T0, Target

ANN = Owner("005A", "Ann Lee", "ann@x.io", "005C", True)
BOB = Owner("005B", "Bob Hart", None, None, False)
CAT = Owner("005C", "Cat Diaz", "cat@x.io", None, True)


def test_owners_are_replaced_whole_per_connection(target: Target) -> None:
    """A refresh replaces the connection's list (a user gone from the CRM leaves it) and no other's."""
    store = target.open()
    try:
        assert store.owners("sf") == [] and store.owners_refreshed_at("sf") is None
        store.replace_owners("sf", [BOB, ANN], T0)
        store.replace_owners("hs", [CAT], T0)
        assert store.owners("sf") == [ANN, BOB]
        assert store.owners_refreshed_at("sf") == T0
        later = T0 + timedelta(days=1)
        store.replace_owners("sf", [CAT, ANN], later)
        assert store.owners("sf") == [ANN, CAT]
        assert store.owners_refreshed_at("sf") == later
        assert store.owners("hs") == [CAT] and store.owners_refreshed_at("hs") == T0
    finally:
        store.close()


def test_an_empty_refresh_leaves_no_cache_and_duplicates_keep_the_last(target: Target) -> None:
    store = target.open()
    try:
        store.replace_owners("sf", [ANN], T0)
        store.replace_owners("sf", [], T0 + timedelta(hours=1))
        assert store.owners("sf") == [] and store.owners_refreshed_at("sf") is None
        store.replace_owners("sf", [ANN, Owner("005A", "Ann Lee-Ray", None, None, True)], T0)
        assert [o.name for o in store.owners("sf")] == ["Ann Lee-Ray"]
    finally:
        store.close()
