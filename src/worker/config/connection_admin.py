"""Managing the connections kept in the state store: the operations `bant-sync connections` and the ops
API's `/connections` routes share, so both validate, refuse and word their errors the same way.

A connection is validated exactly as a `[connections.NAME]` table before it is written (ConfigError, exit
3, with every problem); a missing or duplicate name is a UsageError (exit 2). Nothing here reads or
writes a secret: a stored connection's secrets come from env BANT_SYNC_CONNECTIONS__NAME__*, its _FILE,
or the secrets file. Changes take effect when the configuration is next loaded: the next command, or the
next start of `serve` or of a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from worker.config.loader import check_new_connection
from worker.config.secrets import env_name
from worker.config.settings import Settings
from worker.errors import UsageError
from worker.state.model import StoredConnection
from worker.state.store import StateStore


def _off_hint() -> str:
    return (
        "[state] connections_table is off, so a stored connection would never run: set "
        f"`connections_table = true` under [state] (or env {env_name('state', 'connections_table')}=true) "
        "first"
    )


def add(
    settings: Settings,
    store: StateStore,
    name: str,
    crm: str,
    values: Mapping[str, Any],
    now: datetime,
    *,
    tenant: str = "",
    enabled: bool = True,
) -> StoredConnection:
    """Validate and store a new connection; ConfigError listing every problem, UsageError when the name
    is taken or the store's connections are not loaded by this configuration."""
    if not settings.state.connections_table:
        raise UsageError(_off_hint())
    check_new_connection(settings, name, crm, values, enabled=enabled)
    taken = {row.name.lower(): row.name for row in store.stored_connections()}.get(name.lower())
    if taken is not None or not store.add_connection(name, crm, values, now, tenant=tenant, enabled=enabled):
        raise UsageError(
            f"a connection {taken or name!r} is already in the state store: choose another name, or "
            f"`bant-sync connections remove {taken or name}` first"
        )
    found = store.stored_connection(name)
    assert found is not None
    return found


def get(store: StateStore, name: str) -> StoredConnection:
    found = store.stored_connection(name)
    if found is None:
        raise UsageError(_unknown(store, name))
    return found


def set_enabled(store: StateStore, name: str, enabled: bool, now: datetime) -> StoredConnection:
    if not store.set_connection_enabled(name, enabled, now):
        raise UsageError(_unknown(store, name))
    return get(store, name)


def remove(store: StateStore, name: str) -> None:
    """Delete the stored connection; its run history, ledger and deal states stay under its name."""
    if not store.remove_connection(name):
        raise UsageError(_unknown(store, name))


def _unknown(store: StateStore, name: str) -> str:
    names = ", ".join(row.name for row in store.stored_connections()) or "none"
    return (
        f"no connection named {name!r} in the state store (stored: {names}); connections of the config "
        f"file are changed in the file"
    )


def describe(row: StoredConnection, identity: str | None) -> dict[str, Any]:
    """A stored connection as JSON (no secrets: the table holds none), with its CRM identity once a run
    has reached the account."""
    return {
        "name": row.name,
        "crm": row.crm,
        "tenant": row.tenant,
        "enabled": row.enabled,
        "identity": identity,
        "settings": dict(row.settings),
        "secrets_from": env_name("connections", row.name, "*")
        + f" (or *_FILE), or [connections.{row.name}] in the secrets file",
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "disabled_at": None if row.disabled_at is None else row.disabled_at.isoformat(),
    }


def listing(store: StateStore) -> list[dict[str, Any]]:
    return [describe(row, store.identity_of(row.name)) for row in store.stored_connections()]
