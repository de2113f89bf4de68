"""CRM change events (schema v7): recorded once per event id, marking their deals dirty for an EVENTS run.

`record_events` runs in one transaction: a resent event id is counted as a duplicate and changes nothing,
an echo (bant-sync's own change) is kept so its resend is a duplicate too but marks nothing, and any other
event marks its deal dirty at `now`. An EVENTS run reads the dirty deals oldest mark first and, once it
succeeded, clears only the marks older than its start: a deal marked again while it ran stays dirty.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from worker.state.engine import Database
from worker.state.model import EventTally, InboundEvent, utc
from worker.state.schema import dirty_deals, event_totals, inbound_events

EVENT_RETENTION = timedelta(days=7)
"""How long a received event's id is kept to recognise a resend (HubSpot retries for hours, not days)."""

EVENT_SOURCE = "event"
ECHO_SOURCE = "echo"
_CHUNK = 500


def record_events(db: Database, connection: str, events: Sequence[InboundEvent], now: datetime) -> EventTally:
    """Record `events` of `connection` received at `now`; see the module docstring."""
    now = utc("now", now)
    duplicates = echoes = 0
    marked: set[str] = set()
    with db.write() as conn:
        conn.execute(
            delete(inbound_events).where(
                inbound_events.c.connection == connection,
                inbound_events.c.received_at < now - EVENT_RETENTION,
            )
        )
        for event in events:
            source = ECHO_SOURCE if event.echo else EVENT_SOURCE
            stmt = (
                db.insert(inbound_events)
                .values(
                    connection=connection,
                    event_id=event.event_id,
                    deal_id=event.deal_id,
                    occurred_at=event.occurred_at,
                    received_at=now,
                    source=source,
                )
                .on_conflict_do_nothing(
                    index_elements=[inbound_events.c.connection, inbound_events.c.event_id]
                )
                .returning(inbound_events.c.event_id)
            )
            if conn.execute(stmt).first() is None:
                duplicates += 1
            elif event.echo:
                echoes += 1
            else:
                marked.add(event.deal_id)
        for deal_id in sorted(marked):
            mark = db.insert(dirty_deals).values(connection=connection, deal_id=deal_id, marked_at=now)
            conn.execute(
                mark.on_conflict_do_update(
                    index_elements=[dirty_deals.c.connection, dirty_deals.c.deal_id],
                    set_={"marked_at": now},
                )
            )
        if events:
            totals = db.insert(event_totals).values(
                connection=connection, received=len(events), duplicates=duplicates, echoes=echoes
            )
            conn.execute(
                totals.on_conflict_do_update(
                    index_elements=[event_totals.c.connection],
                    set_={
                        "received": event_totals.c.received + totals.excluded.received,
                        "duplicates": event_totals.c.duplicates + totals.excluded.duplicates,
                        "echoes": event_totals.c.echoes + totals.excluded.echoes,
                    },
                )
            )
    return EventTally(received=len(events), duplicates=duplicates, echoes=echoes, marked=len(marked))


def dirty(db: Database, connection: str, limit: int) -> list[str]:
    """Up to `limit` dirty deals of `connection`, oldest mark first."""
    query = (
        select(dirty_deals.c.deal_id)
        .where(dirty_deals.c.connection == connection)
        .order_by(dirty_deals.c.marked_at, dirty_deals.c.deal_id)
        .limit(limit)
    )
    with db.read() as conn:
        return [str(row.deal_id) for row in conn.execute(query)]


def clear_dirty(db: Database, connection: str, deal_ids: Iterable[str], marked_before: datetime) -> int:
    """Clear the marks of `deal_ids` made before `marked_before`; the number cleared."""
    marked_before = utc("marked_before", marked_before)
    ids = sorted(set(deal_ids))
    cleared = 0
    with db.write() as conn:
        for start in range(0, len(ids), _CHUNK):
            result = conn.execute(
                delete(dirty_deals).where(
                    dirty_deals.c.connection == connection,
                    dirty_deals.c.deal_id.in_(ids[start : start + _CHUNK]),
                    dirty_deals.c.marked_at < marked_before,
                )
            )
            cleared += result.rowcount
    return cleared


def event_counts(db: Database, connection: str) -> dict[str, int]:
    """Totals of `connection`'s recorded events (received, duplicates, echoes) and its dirty deals now."""
    totals = select(event_totals.c.received, event_totals.c.duplicates, event_totals.c.echoes).where(
        event_totals.c.connection == connection
    )
    pending = select(func.count()).select_from(dirty_deals).where(dirty_deals.c.connection == connection)
    with db.read() as conn:
        row = conn.execute(totals).first()
        waiting = conn.execute(pending).scalar() or 0
    counts = (
        {"received": 0, "duplicates": 0, "echoes": 0}
        if row is None
        else {
            "received": int(row.received),
            "duplicates": int(row.duplicates),
            "echoes": int(row.echoes),
        }
    )
    counts["dirty"] = int(waiting)
    return counts
