"""Snoozes as people read them, for `status`, the outcome report and the digest: the deals snoozed now (until
when, who snoozed them and why), the snoozes the rules refused and those that ran out with the deal flagged
again.

Where each part comes from. A snoozed deal's state (`deal_states`) holds its status and snooze date; the
reason and who set it are in the audit row that snoozed it (note "Snoozed until <date>: <reason>", `actor`
the CRM user whose edit it was). A refused snooze is an audit row noted "Snooze ignored: <why>", an ended one
"Snooze ended on <date>". `actor` is a CRM user id: the owners cache names it (a Salesforce User's id is its
owner id; a HubSpot owner carries its user's id, `Owner.user_id`); an id it does not know is shown as is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from connectors.model import Owner
from rules.model import Status
from rules.snooze import ENDED_NOTE, IGNORED_NOTE, SNOOZED_NOTE
from worker.state import DealState, StateStore
from worker.state import deals as deal_reads
from worker.state.model import AuditRow

REFUSED_DAYS = 7
"""`status` counts the snoozes refused in this many days up to now."""


@dataclass(frozen=True, slots=True)
class CurrentSnooze:
    """A deal snoozed now: its name and owner, until when, who snoozed it and when, and why."""

    deal_id: str
    name: str | None
    owner_id: str | None
    owner: str | None
    """The owner's name from the owners cache (None when it does not hold them)."""
    until: date | None
    by: str | None
    """The CRM user who snoozed it: a name where the owners cache knows the id, else the id."""
    reason: str
    snoozed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SnoozeEvent:
    """A snooze refused ("Snooze ignored: …", `why` says why) or ended ("Snooze ended on …", `why` empty:
    only a snooze that held, the deal going from snoozed to unqualified), from one audit row."""

    deal_id: str
    name: str | None
    owner_id: str | None
    owner: str | None
    at: datetime
    by: str | None
    why: str
    status: str
    """The deal's status after it: for an ended snooze, unqualified means flagged again."""


@dataclass(frozen=True, slots=True)
class SnoozeSummary:
    """The snoozes of one connection: current ones (the soonest end first), and the refused and ended ones
    in a window, oldest first. `ended` holds only snoozes that ended with the deal flagged again."""

    current: tuple[CurrentSnooze, ...]
    refused: tuple[SnoozeEvent, ...] = ()
    ended: tuple[SnoozeEvent, ...] = ()

    def refused_by_why(self) -> list[tuple[str, int]]:
        """How many snoozes were refused for each kind of reason (the text before its first colon: "a
        snooze lasts at most 30 days"), most first."""
        counts = Counter(why_kind(e.why) for e in self.refused)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def why_kind(why: str) -> str:
    """A refusal's reason without its particulars ("a snooze lasts at most 30 days: set a date on or before
    2026-12-30" -> "a snooze lasts at most 30 days")."""
    return why.split(":", 1)[0].strip() or why


def current_snooze_json(snooze: CurrentSnooze) -> dict[str, Any]:
    """A current snooze as `status --json` and the report's JSON both give it."""
    return {
        "deal_id": snooze.deal_id,
        "name": snooze.name,
        "owner_id": snooze.owner_id,
        "owner": snooze.owner,
        "until": snooze.until.isoformat() if snooze.until is not None else None,
        "snoozed_by": snooze.by,
        "reason": snooze.reason,
        "snoozed_at": snooze.snoozed_at.isoformat() if snooze.snoozed_at is not None else None,
    }


def note_reason(note: str | None) -> tuple[date | None, str]:
    """(until, reason) from a note "Snoozed until 2026-12-20: <reason>"; (None, "") for any other note."""
    if not note or not note.startswith(SNOOZED_NOTE):
        return None, ""
    day, _, reason = note[len(SNOOZED_NOTE) :].partition(": ")
    try:
        until = date.fromisoformat(day.strip())
    except ValueError:
        until = None
    return until, reason.strip()


def _people(owners: Iterable[Owner]) -> dict[str, Owner]:
    """Owners by owner id and, where it differs (HubSpot), by the id of their CRM user."""
    people: dict[str, Owner] = {}
    for owner in owners:
        people[owner.id] = owner
        if owner.user_id:
            people.setdefault(owner.user_id, owner)
    return people


def _person(people: Mapping[str, Owner], user_id: str | None) -> str | None:
    if not user_id:
        return None
    owner = people.get(user_id)
    return owner.name if owner is not None else user_id


def current_snoozes(
    snoozed: Iterable[DealState], notes: Mapping[str, AuditRow], owners: Iterable[Owner]
) -> list[CurrentSnooze]:
    """The snoozed deals with who snoozed them and why (from `notes`, each deal's latest snoozing audit
    row), the soonest end first. The date is the state's; the note's stands in where a state has none."""
    people = _people(owners)
    found = []
    for state in snoozed:
        if state.status != Status.SNOOZED:
            continue
        row = notes.get(state.deal_id)
        noted_until, reason = note_reason(row.note if row is not None else None)
        found.append(
            CurrentSnooze(
                deal_id=state.deal_id,
                name=state.deal_name,
                owner_id=state.owner_id,
                owner=_person(people, state.owner_id),
                until=state.snooze_until or noted_until,
                by=_person(people, row.actor if row is not None else None),
                reason=reason,
                snoozed_at=row.at if row is not None else None,
            )
        )
    return sorted(found, key=lambda s: (s.until or date.max, s.deal_id))


def snooze_events(
    rows: Iterable[AuditRow], states: Mapping[str, DealState], owners: Iterable[Owner], prefix: str
) -> list[SnoozeEvent]:
    """The audit rows whose note starts with `prefix` (IGNORED_NOTE or ENDED_NOTE) as events, named from
    the deals' current states where bant-sync still holds one (a deal closed since has no name here)."""
    people = _people(owners)
    found = []
    for row in rows:
        if not row.note or not row.note.startswith(prefix):
            continue
        if prefix == ENDED_NOTE and (
            row.old_status != Status.SNOOZED or row.new_status not in deal_reads.UNQUALIFIED
        ):
            continue  # only a snooze that held and ended with the deal flagged again (not an ignored one)
        state = states.get(row.deal_id)
        owner_id = state.owner_id if state is not None else None
        found.append(
            SnoozeEvent(
                deal_id=row.deal_id,
                name=state.deal_name if state is not None else None,
                owner_id=owner_id,
                owner=_person(people, owner_id),
                at=row.at,
                by=_person(people, row.actor),
                why=row.note[len(prefix) :].strip() if prefix == IGNORED_NOTE else "",
                status=row.new_status,
            )
        )
    return found


def from_history(
    history: Mapping[str, Sequence[AuditRow]],
    states: Sequence[DealState],
    owners: Sequence[Owner],
    start: datetime,
    end: datetime,
) -> SnoozeSummary:
    """The report's snoozes, from the audit log it already read (`history`, by deal, oldest first): the
    deals snoozed now, and the snoozes refused or ended (re-flagged) in [start, end]."""
    notes: dict[str, AuditRow] = {}
    in_window: list[AuditRow] = []
    for deal_id, rows in history.items():
        for row in rows:
            if row.new_status == Status.SNOOZED and (row.note or "").startswith(SNOOZED_NOTE):
                notes[deal_id] = row
            if start <= row.at <= end and row.note:
                in_window.append(row)
    in_window.sort(key=lambda r: r.seq)
    by_id = {s.deal_id: s for s in states}
    return SnoozeSummary(
        current=tuple(current_snoozes(states, notes, owners)),
        refused=tuple(snooze_events(in_window, by_id, owners, IGNORED_NOTE)),
        ended=tuple(snooze_events(in_window, by_id, owners, ENDED_NOTE)),
    )


def read_snoozes(
    store: StateStore, connection: str, now: datetime, days: int = REFUSED_DAYS
) -> SnoozeSummary:
    """What `status` shows: the connection's deals snoozed now, and the snoozes refused or ended since
    `days` before `now`; a few reads, never the whole audit log into memory."""
    snoozed = store.snoozed_deals(connection)
    owners = store.owners(connection)
    notes = store.snooze_notes(connection, [s.deal_id for s in snoozed]) if snoozed else {}
    start = now - timedelta(days=days)
    refused_rows = store.snooze_events(connection, IGNORED_NOTE, start)
    ended_rows = store.snooze_events(connection, ENDED_NOTE, start)
    named = {r.deal_id for r in refused_rows + ended_rows}
    states = store.deal_states_for(connection, named) if named else {}
    return SnoozeSummary(
        current=tuple(current_snoozes(snoozed, notes, owners)),
        refused=tuple(snooze_events(refused_rows, states, owners, IGNORED_NOTE)),
        ended=tuple(snooze_events(ended_rows, states, owners, ENDED_NOTE)),
    )


def snoozed_with_reasons(store: StateStore, connection: str) -> tuple[list[DealState], dict[str, str]]:
    """The digest's read: the connection's snoozed deal states (the soonest end first) and each one's reason,
    by deal id, from the audit row that snoozed it (deals without one are absent)."""
    snoozed = store.snoozed_deals(connection)
    notes = store.snooze_notes(connection, [s.deal_id for s in snoozed]) if snoozed else {}
    return snoozed, {deal_id: note_reason(row.note)[1] for deal_id, row in notes.items()}
