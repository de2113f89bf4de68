"""Which CRM account (Salesforce org, HubSpot portal) each connection reached, so two connections of one
config that point at the same account are refused instead of fighting over the same deals and tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from worker.state.engine import Database
from worker.state.schema import identities


def record_identity(db: Database, connection: str, crm: str, identity: str, now: datetime) -> None:
    stmt = db.insert(identities)
    stmt = stmt.on_conflict_do_update(
        index_elements=[identities.c.connection],
        set_={"crm": stmt.excluded.crm, "identity": stmt.excluded.identity, "seen_at": stmt.excluded.seen_at},
    )
    with db.write() as conn:
        conn.execute(stmt, [{"connection": connection, "crm": crm, "identity": identity, "seen_at": now}])


def connections_of(db: Database, identity: str) -> list[str]:
    """Every connection name that last reached this CRM identity, sorted."""
    query = select(identities.c.connection).where(identities.c.identity == identity)
    with db.read() as conn:
        return sorted(str(name) for name in conn.execute(query).scalars())


def identity_of(db: Database, connection: str) -> str | None:
    """The CRM identity this connection last reached, if it ever ran."""
    query = select(identities.c.identity).where(identities.c.connection == connection)
    with db.read() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else str(found)
