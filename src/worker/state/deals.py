"""What the store knows about one page of deals: their states, the status the audit log ends with, and the
day each unqualified deal was first flagged. One query per 5,000 deal ids (a page is at most 2,000), each
served by the (connection, deal_id) leading columns of the table's key or index.

Where the latest status comes from. `deal_states.status` is the latest *assessment* (saved when a page is
done, also for a deal whose status write the CRM rejected), and its row is dropped when the deal closes; the
audit log holds every status that *reached the CRM*, in order. To tell whether the CRM shows a status the
audit log missed, compare with the audit log (`last_audited_status`), never with deal_states.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import Connection, Row, func, select

from rules.model import Status
from worker.state.engine import Database
from worker.state.model import DealState
from worker.state.schema import audit_log, deal_states

UNQUALIFIED = frozenset(status.value for status in Status if status.is_unqualified)
CLOCKED = frozenset(status.value for status in Status if status.is_flagged)
"""The statuses during which a deal's qualify-out clock runs: unqualified, and snoozed (a snooze
acknowledges the flag, it does not restart the stretch)."""
_IN_CHUNK = 5000
"""Deal ids per IN (...) query: well under both backends' bound-parameter limits."""


def _chunks(deal_ids: Iterable[str]) -> Iterator[list[str]]:
    wanted = sorted(set(deal_ids))
    for start in range(0, len(wanted), _IN_CHUNK):
        yield wanted[start : start + _IN_CHUNK]


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def state_from_row(row: Row[Any]) -> DealState:
    return DealState(
        row.deal_id,
        row.owner_id,
        row.status,
        row.missing,
        row.updated_at,
        _day(row.flagged_since),
        row.deal_name,
        _day(row.snooze_until),
        _day(row.snoozed_on),
        row.judged,
    )


def deal_states_for(db: Database, connection: str, deal_ids: Iterable[str]) -> dict[str, DealState]:
    """The stored state of each of these deals that has one, by deal id."""
    found: dict[str, DealState] = {}
    with db.read() as conn:
        for chunk in _chunks(deal_ids):
            query = select(deal_states).where(
                deal_states.c.connection == connection, deal_states.c.deal_id.in_(chunk)
            )
            found.update((row.deal_id, state_from_row(row)) for row in conn.execute(query).all())
    return found


def _last_audited(conn: Connection, connection: str, chunk: list[str]) -> dict[str, str]:
    latest = (
        select(audit_log.c.deal_id, func.max(audit_log.c.seq).label("seq"))
        .where(audit_log.c.connection == connection, audit_log.c.deal_id.in_(chunk))
        .group_by(audit_log.c.deal_id)
        .subquery()
    )
    query = select(audit_log.c.deal_id, audit_log.c.new_status).join(latest, audit_log.c.seq == latest.c.seq)
    return {deal_id: status for deal_id, status in conn.execute(query).all()}


def last_audited_status(db: Database, connection: str, deal_ids: Iterable[str]) -> dict[str, str]:
    """The `new_status` of each deal's latest audit row, by deal id (deals never audited are absent)."""
    found: dict[str, str] = {}
    with db.read() as conn:
        for chunk in _chunks(deal_ids):
            found.update(_last_audited(conn, connection, chunk))
    return found


def flag_clocks(db: Database, connection: str, deal_ids: Iterable[str]) -> dict[str, date]:
    """The day each unqualified deal's current unqualified stretch began, by deal id.

    `deal_states.flagged_since` when the deal's state is unqualified and has it. Otherwise (a state written
    before the store kept the day, or no state at all) from the audit log, when its latest row is
    unqualified: the date (UTC) of the most recent change into an unqualified status from a status that is
    not (or from none); if the log holds no such change (it begins mid-stretch), its oldest row of the
    stretch. Deals that are not unqualified, or that the store knows nothing about, are absent.
    """
    return known_and_clocks(db, connection, deal_ids)[1]


def known_and_clocks(
    db: Database, connection: str, deal_ids: Iterable[str]
) -> tuple[set[str], dict[str, date]]:
    """The deals the store holds a state for, and `flag_clocks` of the same deals, from one read."""
    known: set[str] = set()
    clocks: dict[str, date] = {}
    with db.read() as conn:
        for chunk in _chunks(deal_ids):
            query = select(deal_states.c.deal_id, deal_states.c.status, deal_states.c.flagged_since).where(
                deal_states.c.connection == connection, deal_states.c.deal_id.in_(chunk)
            )
            derive = set(chunk)
            for deal_id, status, flagged in conn.execute(query).all():
                known.add(deal_id)
                if status not in CLOCKED:
                    derive.discard(deal_id)
                elif flagged:
                    clocks[deal_id] = date.fromisoformat(flagged)
                    derive.discard(deal_id)
            if derive:
                clocks.update(_clocks_from_audit(conn, connection, sorted(derive)))
    return known, clocks


def _clocks_from_audit(conn: Connection, connection: str, deal_ids: list[str]) -> dict[str, date]:
    query = (
        select(audit_log.c.deal_id, audit_log.c.old_status, audit_log.c.new_status, audit_log.c.at)
        .where(audit_log.c.connection == connection, audit_log.c.deal_id.in_(deal_ids))
        .order_by(audit_log.c.deal_id, audit_log.c.seq.desc())
    )
    clocks: dict[str, date] = {}
    walking: str | None = None
    settled = True
    for deal_id, old, new, at in conn.execute(query).all():
        if deal_id != walking:
            walking, settled = deal_id, False
        if settled:
            continue
        if new not in CLOCKED:
            settled = True
            continue
        clocks[deal_id] = at.date()
        settled = old is None or old not in CLOCKED
    return clocks


def flagged_deals(db: Database, connection: str) -> list[DealState]:
    """The connection's unqualified deals (the latest assessment of each), by owner (none first), then id."""
    query = select(deal_states).where(
        deal_states.c.connection == connection, deal_states.c.status.in_(sorted(UNQUALIFIED))
    )
    with db.read() as conn:
        found = [state_from_row(row) for row in conn.execute(query).all()]
    return sorted(found, key=lambda s: (s.owner_id or "", s.deal_id))


def snooze_days(db: Database, connection: str, deal_ids: Iterable[str]) -> dict[str, tuple[date, date]]:
    """(snooze until, first seen) of each of these deals whose stored state records a snooze."""
    found: dict[str, tuple[date, date]] = {}
    with db.read() as conn:
        for chunk in _chunks(deal_ids):
            query = select(deal_states.c.deal_id, deal_states.c.snooze_until, deal_states.c.snoozed_on).where(
                deal_states.c.connection == connection,
                deal_states.c.deal_id.in_(chunk),
                deal_states.c.snooze_until.is_not(None),
            )
            for deal_id, until, seen in conn.execute(query).all():
                if until and seen:
                    found[deal_id] = (date.fromisoformat(until), date.fromisoformat(seen))
    return found


def expired_snoozes(db: Database, connection: str, today: date) -> list[str]:
    """The deals stored as snoozed whose snooze ended before `today`: they must be judged again although
    nobody edited them (the CRM's change stream does not bring them back)."""
    query = select(deal_states.c.deal_id).where(
        deal_states.c.connection == connection,
        deal_states.c.status == Status.SNOOZED.value,
        deal_states.c.snooze_until < today.isoformat(),
    )
    with db.read() as conn:
        return sorted(str(row[0]) for row in conn.execute(query).all())


def snoozed_deals(db: Database, connection: str) -> list[DealState]:
    """The connection's snoozed deals (the latest assessment of each), the soonest snooze end first."""
    query = select(deal_states).where(
        deal_states.c.connection == connection, deal_states.c.status == Status.SNOOZED.value
    )
    with db.read() as conn:
        found = [state_from_row(row) for row in conn.execute(query).all()]
    return sorted(found, key=lambda s: (s.snooze_until or date.max, s.deal_id))
