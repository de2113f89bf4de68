"""CRM change events (schema v7, v8): recorded once per event id, marking their deals dirty for an EVENTS run.

`record_events` runs in one transaction: a resent event id is counted as a duplicate and changes nothing,
an echo (bant-sync's own change) is kept so its resend is a duplicate too but marks nothing, and any other
event marks its deal dirty at `now`, remembering the earliest event time behind the mark. An EVENTS run
reads the dirty deals oldest mark first and, once it succeeded, clears only the marks older than the
moment it listed them (a deal marked again while it ran stays dirty) and records each cleared deal's lag:
from its earliest event time to the run's end. A mark that survives a run (marked again meanwhile) keeps
its earliest event time, so its lag counts from the first change: the figure errs high, never low.

A change stream (Salesforce CDC) also keeps its position here (`stream_position`), saved after the events
it covers were recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, func, select

from worker.state.engine import Database
from worker.state.model import EventTally, InboundEvent, LagStats, StreamPosition, utc
from worker.state.schema import (
    dirty_deals,
    event_lag_buckets,
    event_lags,
    event_streams,
    event_totals,
    inbound_events,
)

EVENT_RETENTION = timedelta(days=7)
"""How long a received event's id is kept to recognise a resend (HubSpot retries for hours, not days)."""

EVENT_SOURCE = "event"
ECHO_SOURCE = "echo"
_CHUNK = 500
_ROWS = 150
"""Rows per multi-row INSERT: 6 columns each stays under SQLite's oldest limit of 999 parameters."""
LAG_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
"""Upper bounds (seconds) of the lag histogram's buckets; the goal is 5 s at the 95th percentile."""
INF = "+Inf"
SUM_KEY = "sum_ms"


def record_events(db: Database, connection: str, events: Sequence[InboundEvent], now: datetime) -> EventTally:
    """Record `events` of `connection` received at `now`; see the module docstring. The rows go in
    multi-row statements of _ROWS (a 10,000-event import is about 70 statements, not 20,000)."""
    now = utc("now", now)
    duplicates = echoes = 0
    marked: dict[str, datetime] = {}
    first: dict[str, InboundEvent] = {}
    for event in events:
        if event.event_id in first:
            duplicates += 1
        else:
            first[event.event_id] = event
    unique = list(first.values())
    with db.write() as conn:
        conn.execute(
            delete(inbound_events).where(
                inbound_events.c.connection == connection,
                inbound_events.c.received_at < now - EVENT_RETENTION,
            )
        )
        for start in range(0, len(unique), _ROWS):
            chunk = unique[start : start + _ROWS]
            rows = [
                {
                    "connection": connection,
                    "event_id": event.event_id,
                    "deal_id": event.deal_id,
                    "occurred_at": event.occurred_at,
                    "received_at": now,
                    "source": ECHO_SOURCE if event.echo else EVENT_SOURCE,
                }
                for event in chunk
            ]
            stmt = (
                db.insert(inbound_events)
                .values(rows)
                .on_conflict_do_nothing(
                    index_elements=[inbound_events.c.connection, inbound_events.c.event_id]
                )
                .returning(inbound_events.c.event_id)
            )
            new = {str(row.event_id) for row in conn.execute(stmt)}
            for event in chunk:
                if event.event_id not in new:
                    duplicates += 1
                elif event.echo:
                    echoes += 1
                else:
                    earliest = marked.get(event.deal_id)
                    if earliest is None or event.occurred_at < earliest:
                        marked[event.deal_id] = event.occurred_at
        deal_ids = sorted(marked)
        for start in range(0, len(deal_ids), _ROWS):
            rows = [
                {
                    "connection": connection,
                    "deal_id": deal_id,
                    "marked_at": now,
                    "occurred_at": marked[deal_id],
                }
                for deal_id in deal_ids[start : start + _ROWS]
            ]
            mark = db.insert(dirty_deals).values(rows)
            held = dirty_deals.c.occurred_at
            conn.execute(
                mark.on_conflict_do_update(
                    index_elements=[dirty_deals.c.connection, dirty_deals.c.deal_id],
                    set_={
                        "marked_at": now,
                        "occurred_at": case(
                            (held.is_(None), mark.excluded.occurred_at),
                            (mark.excluded.occurred_at < held, mark.excluded.occurred_at),
                            else_=held,
                        ),
                    },
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


def clear_dirty(
    db: Database,
    connection: str,
    deal_ids: Iterable[str],
    marked_before: datetime,
    reassessed_at: datetime | None = None,
) -> int:
    """Clear the marks of `deal_ids` made before `marked_before`; the number cleared. With `reassessed_at`
    (when the verdicts were written back), each cleared mark's lag is recorded."""
    marked_before = utc("marked_before", marked_before)
    ids = sorted(set(deal_ids))
    cleared = 0
    lags: dict[str, float] = {}
    with db.write() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = (
                dirty_deals.c.connection == connection,
                dirty_deals.c.deal_id.in_(ids[start : start + _CHUNK]),
                dirty_deals.c.marked_at < marked_before,
            )
            if reassessed_at is not None:
                rows = conn.execute(select(dirty_deals.c.deal_id, dirty_deals.c.occurred_at).where(*chunk))
                for row in rows:
                    if row.occurred_at is not None:
                        lag = (utc("reassessed_at", reassessed_at) - row.occurred_at).total_seconds()
                        lags[str(row.deal_id)] = max(0.0, lag)
            cleared += conn.execute(delete(dirty_deals).where(*chunk)).rowcount
        if reassessed_at is not None and lags:
            _record_lags(db, conn, connection, lags, utc("reassessed_at", reassessed_at))
    return cleared


def _record_lags(
    db: Database, conn: Connection, connection: str, lags: dict[str, float], at: datetime
) -> None:
    """Samples (for the quantiles of `status`) and the cumulative histogram (for /metrics)."""
    conn.execute(delete(event_lags).where(event_lags.c.reassessed_at < at - EVENT_RETENTION))
    for deal_id, lag in sorted(lags.items()):
        sample = db.insert(event_lags).values(
            connection=connection, deal_id=deal_id, reassessed_at=at, lag_seconds=lag
        )
        conn.execute(sample.on_conflict_do_nothing(index_elements=list(event_lags.primary_key.columns)))
    counts = {bucket_key(bound): sum(1 for lag in lags.values() if lag <= bound) for bound in LAG_BUCKETS}
    counts[INF] = len(lags)
    counts[SUM_KEY] = round(sum(lags.values()) * 1000)
    for le, count in counts.items():
        row = db.insert(event_lag_buckets).values(connection=connection, le=le, total=count)
        conn.execute(
            row.on_conflict_do_update(
                index_elements=[event_lag_buckets.c.connection, event_lag_buckets.c.le],
                set_={"total": event_lag_buckets.c.total + row.excluded.total},
            )
        )


def bucket_key(bound: float) -> str:
    """A histogram bound as stored and exposed: "0.5", "1", "300"."""
    return f"{bound:g}"


def lag_histogram(db: Database, connection: str) -> tuple[list[tuple[str, int]], float]:
    """The connection's cumulative lag buckets (bound, count; "+Inf" last) and the sum of lags in seconds;
    all zero when it has none."""
    query = select(event_lag_buckets.c.le, event_lag_buckets.c.total).where(
        event_lag_buckets.c.connection == connection
    )
    with db.read() as conn:
        held = {str(row.le): int(row.total) for row in conn.execute(query)}
    buckets = [(bucket_key(bound), held.get(bucket_key(bound), 0)) for bound in LAG_BUCKETS]
    buckets.append((INF, held.get(INF, 0)))
    return buckets, held.get(SUM_KEY, 0) / 1000


def lag_stats(db: Database, connection: str, since: datetime) -> LagStats:
    """Quantiles of the lags recorded since `since` (the samples kept: EVENT_RETENTION)."""
    query = (
        select(event_lags.c.lag_seconds)
        .where(event_lags.c.connection == connection, event_lags.c.reassessed_at >= utc("since", since))
        .order_by(event_lags.c.lag_seconds)
    )
    with db.read() as conn:
        values = [float(row.lag_seconds) for row in conn.execute(query)]
    return LagStats.of(values)


def stream_position(db: Database, connection: str) -> StreamPosition | None:
    """Where the connection's change stream resumes, or None before its first saved event."""
    query = select(event_streams).where(event_streams.c.connection == connection)
    with db.read() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return StreamPosition(str(row.position), row.event_at, row.saved_at)


def save_stream_position(
    db: Database, connection: str, position: str, event_at: datetime | None, now: datetime
) -> None:
    """Remember where the connection's change stream resumes (after recording what it delivered)."""
    event_at = None if event_at is None else utc("event_at", event_at)
    values = {"position": position, "event_at": event_at, "saved_at": utc("now", now)}
    with db.write() as conn:
        row = db.insert(event_streams).values(connection=connection, **values)
        conn.execute(row.on_conflict_do_update(index_elements=[event_streams.c.connection], set_=values))


def forget_stream_position(db: Database, connection: str) -> bool:
    """Drop the stored position (the next subscription starts from the newest event); True if one was."""
    with db.write() as conn:
        return bool(
            conn.execute(delete(event_streams).where(event_streams.c.connection == connection)).rowcount
        )


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
