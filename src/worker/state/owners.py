"""The owners cache: each connection's CRM users (id, name, e-mail, manager, active), replaced whole.

A refresh replaces every row of the connection in one transaction, so a reader sees the old list or the
new one, never half of each; a user deleted in the CRM leaves the cache with the next refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from connectors.model import Owner
from worker.state.engine import Database
from worker.state.schema import owners


def replace_owners(db: Database, connection: str, found: Sequence[Owner], now: datetime) -> None:
    """Make `found` the connection's cached owners, refreshed at `now` (duplicate ids: the last wins)."""
    rows = {
        o.id: {
            "connection": connection,
            "owner_id": o.id,
            "name": o.name,
            "email": o.email,
            "manager_id": o.manager_id,
            "active": o.active,
            "refreshed_at": now,
            "user_id": o.user_id,
        }
        for o in found
    }
    with db.write() as conn:
        conn.execute(delete(owners).where(owners.c.connection == connection))
        if rows:
            conn.execute(owners.insert(), list(rows.values()))


def cached_owners(db: Database, connection: str) -> list[Owner]:
    """The connection's cached owners, by name then id."""
    query = (
        select(
            owners.c.owner_id,
            owners.c.name,
            owners.c.email,
            owners.c.manager_id,
            owners.c.active,
            owners.c.user_id,
        )
        .where(owners.c.connection == connection)
        .order_by(owners.c.name, owners.c.owner_id)
    )
    with db.read() as conn:
        return [
            Owner(str(r.owner_id), str(r.name), r.email, r.manager_id, bool(r.active), r.user_id)
            for r in conn.execute(query)
        ]


def owners_refreshed_at(db: Database, connection: str) -> datetime | None:
    """When the connection's owners were last refreshed; None when none are cached."""
    query = select(func.max(owners.c.refreshed_at)).where(owners.c.connection == connection)
    with db.read() as conn:
        found = conn.execute(query).scalar()
    assert found is None or isinstance(found, datetime)
    return found
