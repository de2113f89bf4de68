"""The `connections` table (schema v9) on both backends: add, list, get, enable/disable, update, remove."""

from __future__ import annotations

from datetime import timedelta

from worker.state import StateStore

from .conftest import T0


def test_a_connection_is_added_once_and_read_back(store: StateStore) -> None:
    """A second add of the same name writes nothing; settings come back as they went in."""
    settings = {"host": "http://127.0.0.1:9", "incremental_every_minutes": 5, "owners": ["a", "b"]}
    assert store.add_connection("acme", "hubspot", settings, T0, tenant="Acme Corp")
    assert not store.add_connection("acme", "salesforce", {}, T0)
    found = store.stored_connection("acme")
    assert found is not None
    assert (found.crm, found.tenant, found.enabled, found.disabled_at) == ("hubspot", "Acme Corp", True, None)
    assert found.settings == settings
    assert found.created_at == found.updated_at == T0
    assert store.stored_connection("other") is None


def test_connections_are_listed_by_name(store: StateStore) -> None:
    store.add_connection("zeta", "hubspot", {}, T0)
    store.add_connection("alpha", "salesforce", {}, T0, enabled=False)
    listed = store.stored_connections()
    assert [c.name for c in listed] == ["alpha", "zeta"]
    assert listed[0].enabled is False and listed[0].disabled_at == T0


def test_disable_keeps_the_first_disabled_time_and_enable_clears_it(store: StateStore) -> None:
    store.add_connection("acme", "hubspot", {}, T0)
    later, latest = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    assert store.set_connection_enabled("acme", False, later)
    assert store.set_connection_enabled("acme", False, latest)
    found = store.stored_connection("acme")
    assert found is not None and not found.enabled
    assert found.disabled_at == later and found.updated_at == latest
    assert store.set_connection_enabled("acme", True, latest)
    found = store.stored_connection("acme")
    assert found is not None and found.enabled and found.disabled_at is None
    assert not store.set_connection_enabled("missing", True, latest)


def test_settings_are_replaced_and_a_connection_removed(store: StateStore) -> None:
    store.add_connection("acme", "hubspot", {"host": "a"}, T0)
    assert store.update_connection_settings("acme", {"host": "b"}, T0 + timedelta(seconds=1))
    found = store.stored_connection("acme")
    assert found is not None and found.settings == {"host": "b"}
    assert not store.update_connection_settings("missing", {}, T0)
    assert store.remove_connection("acme")
    assert not store.remove_connection("acme")
    assert store.stored_connections() == []
