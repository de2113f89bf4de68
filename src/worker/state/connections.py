"""Connections kept as data in the state store: rows of the `connections` table (schema v9).

The store only keeps them; what a connection's settings mean, and that none of them is a secret, is checked
by the configuration loader before a row is written and again each time the rows are loaded
(worker.config.store_connections), so a row is validated exactly like a `[connections.NAME]` table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from worker.state.engine import Database
from worker.state.model import StoredConnection, utc
from worker.state.schema import connections


def _row(row: Any) -> StoredConnection:
    return StoredConnection(
        name=str(row.name),
        crm=str(row.crm),
        tenant=str(row.tenant),
        enabled=bool(row.enabled),
        settings=json.loads(row.settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
        disabled_at=row.disabled_at,
    )


def add(
    db: Database,
    name: str,
    crm: str,
    settings: Mapping[str, object],
    now: datetime,
    *,
    tenant: str = "",
    enabled: bool = True,
) -> bool:
    """Insert the connection; False (nothing written) when one of that name is already stored."""
    now = utc("now", now)
    stmt = db.insert(connections).on_conflict_do_nothing(index_elements=[connections.c.name])
    values = {
        "name": name,
        "tenant": tenant,
        "crm": crm,
        "enabled": enabled,
        "settings": json.dumps(dict(settings), sort_keys=True),
        "created_at": now,
        "updated_at": now,
        "disabled_at": None if enabled else now,
    }
    with db.write() as conn:
        return conn.execute(stmt.values(**values).returning(connections.c.name)).first() is not None


def list_all(db: Database) -> list[StoredConnection]:
    """Every stored connection by name, in one query."""
    with db.read() as conn:
        return [_row(row) for row in conn.execute(select(connections).order_by(connections.c.name))]


def get(db: Database, name: str) -> StoredConnection | None:
    with db.read() as conn:
        row = conn.execute(select(connections).where(connections.c.name == name)).first()
    return None if row is None else _row(row)


def set_enabled(db: Database, name: str, enabled: bool, now: datetime) -> bool:
    """Enable or disable the connection; False when none of that name is stored. Disabling an already
    disabled connection keeps the time it was first disabled."""
    now = utc("now", now)
    values: dict[str, Any] = {"enabled": enabled, "updated_at": now}
    if enabled:
        values["disabled_at"] = None
    stmt = update(connections).where(connections.c.name == name)
    with db.write() as conn:
        found = conn.execute(select(connections.c.enabled).where(connections.c.name == name)).first()
        if found is None:
            return False
        if not enabled and found.enabled:
            values["disabled_at"] = now
        conn.execute(stmt.values(**values))
    return True


def update_settings(db: Database, name: str, settings: Mapping[str, object], now: datetime) -> bool:
    """Replace the connection's settings; False when none of that name is stored."""
    stmt = (
        update(connections)
        .where(connections.c.name == name)
        .values(settings=json.dumps(dict(settings), sort_keys=True), updated_at=utc("now", now))
    )
    with db.write() as conn:
        return conn.execute(stmt.returning(connections.c.name)).first() is not None


def remove(db: Database, name: str) -> bool:
    """Delete the connection's row (its run history, ledger and deal states stay, under its name); False
    when none of that name is stored."""
    with db.write() as conn:
        stmt = delete(connections).where(connections.c.name == name).returning(connections.c.name)
        return conn.execute(stmt).first() is not None
