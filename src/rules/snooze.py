"""Snooze: a rep acknowledges a flag with a reason and a date, and the rules decide whether it holds.

A snooze is two fields on the deal (snooze until, snooze reason). It holds only on a deal that is otherwise
unqualified, and only within the framework's `[snooze]` rules: no later than `max_days` after the day it was
first seen, a reason of at least `min_reason_length` characters, and not on a POC unless `allow_poc`. One that
breaks a rule is ignored (the deal stays flagged) and says why; one whose date has passed has ended.

`Deal.snoozed_on` is the day the worker first saw the current snooze date (its state store keeps it), so
the limit is counted from when the rep set the snooze, not from today: a 45-day snooze does not become
valid by waiting 15 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from rules.model import Deal

SNOOZED_NOTE = "Snoozed until "
"""How the note of a snooze that holds begins ("Snoozed until 2026-12-20: <reason>")."""
IGNORED_NOTE = "Snooze ignored: "
"""How the note of a refused snooze begins ("Snooze ignored: <why>")."""
ENDED_NOTE = "Snooze ended on "
"""How the note of a snooze that ran out begins ("Snooze ended on 2026-12-20")."""
NOTE_PREFIXES = (SNOOZED_NOTE, IGNORED_NOTE, ENDED_NOTE)
"""Every snooze note begins with one of these: the reasons field's snooze line and the audit log's notes
are found by them."""

POC_REFUSAL = "POCs cannot be snoozed — every criterion is required before a POC goes ahead"


@dataclass(frozen=True, slots=True)
class SnoozeRules:
    """The framework file's `[snooze]` table."""

    enabled: bool = True
    max_days: int = 30
    allow_poc: bool = False
    min_reason_length: int = 10


DEFAULT_SNOOZE_RULES = SnoozeRules()


class SnoozeState(StrEnum):
    ACTIVE = "active"
    IGNORED = "ignored"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Snooze:
    """What the rules made of a deal's snooze fields. `why` says why an ignored snooze does not hold; `by`
    is the CRM user who last edited the deal (who set the snooze, when it is new), None for an ended one
    (time ended it, not a person)."""

    state: SnoozeState
    until: date | None
    reason: str
    why: str = ""
    by: str | None = None

    @property
    def note(self) -> str:
        """The one line the reasons field and the task carry about this snooze."""
        if self.state is SnoozeState.ACTIVE:
            return f"{SNOOZED_NOTE}{_iso(self.until)}: {self.reason}"
        if self.state is SnoozeState.ENDED:
            return f"{ENDED_NOTE}{_iso(self.until)}"
        return f"{IGNORED_NOTE}{self.why}"


def _iso(day: date | None) -> str:
    return day.isoformat() if day is not None else "?"


def snooze_reason_text(value: object) -> str:
    """The reason as one line: whitespace (newlines included) collapsed, None as empty."""
    if value is None:
        return ""
    return " ".join(str(value).split())


def has_snooze(deal: Deal) -> bool:
    """True when either snooze field is filled in."""
    return deal.snooze_until is not None or bool(snooze_reason_text(deal.snooze_reason))


def judge_snooze(deal: Deal, rules: SnoozeRules, is_poc: bool, today: date) -> Snooze | None:
    """The snooze of an unqualified deal, or None when neither snooze field is filled in."""
    if not has_snooze(deal):
        return None
    until, reason, by = deal.snooze_until, snooze_reason_text(deal.snooze_reason), deal.modified_by

    def ignored(why: str) -> Snooze:
        return Snooze(SnoozeState.IGNORED, until, reason, why, by)

    if not rules.enabled:
        return ignored("snoozing is turned off for this framework")
    if until is None:
        return ignored("no snooze-until date: set the date the flag may come back")
    if until < today:
        return Snooze(SnoozeState.ENDED, until, reason)
    if is_poc and not rules.allow_poc:
        return ignored(POC_REFUSAL)
    if len(reason) < rules.min_reason_length:
        return ignored(f"a snooze needs a reason of at least {rules.min_reason_length} characters")
    first_seen = deal.snoozed_on if deal.snoozed_on is not None and deal.snoozed_on <= today else today
    latest = first_seen + timedelta(days=rules.max_days)
    if until > latest:
        return ignored(
            f"a snooze lasts at most {rules.max_days} days: set a date on or before {latest.isoformat()}"
        )
    return Snooze(SnoozeState.ACTIVE, until, reason, "", by)
