"""What a follow-up task says and when it is due, the same on every CRM. Pure functions: time is passed in.

A task must tell the rep exactly what to confirm, so the description names each missing criterion with a
concrete question and, when the rules gave one, the reason it counts as missing ("'TBD' is a placeholder").
Text that came from the CRM (deal names, quoted values) can carry invisible characters: bidirectional
overrides that make a subject read backwards (U+202E, the "Trojan Source" trick) and zero-width ones that
make two names look alike. Both are stripped, as are other control characters but the body's newlines.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta

from rules.model import Assessment, Gap
from rules.snooze import NOTE_PREFIXES, Snooze, SnoozeState

SUBJECT_MAX = 255
"""Salesforce Task.Subject is a 255-character field; HubSpot accepts more, we keep one rule."""

DESCRIPTION_MAX = 32_000
"""Salesforce Task.Description is a 32,000-character long text area."""

SUBJECT_PREFIX = "[bant-sync]"

_INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b-\u001f\u007f-\u009f"  # C0/C1 controls but tab and newline
    "\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"  # bidi marks and controls, zero-width
)


def visible(text: str, newlines: bool = True) -> str:
    """`text` without bidi controls, zero-width characters and control characters (tabs and newlines kept
    when `newlines`, else each becomes a space)."""
    cleaned = _INVISIBLE.sub("", text)
    return cleaned if newlines else re.sub(r"[\t\n]", " ", cleaned)


PROMPTS: dict[str, str] = {
    "budget": "Budget — confirm the approved budget (an amount or a range) and who holds it.",
    "authority": "Authority — name the economic buyer or decision maker who signs off.",
    "need": "Need — write down the business problem this deal solves, in the customer's words.",
    "timing": "Timing — confirm the decision date (not in the past) or the buying timeframe.",
}

_STATUS_WORDS: dict[str, str] = {
    "poc_unqualified": "POC without BANT",
    "qualify_out": "qualify or close out",
}


def prompt_for(criterion: str) -> str:
    """The question to put to the rep for one missing criterion (built-in BANT ones, or a generic one)."""
    known = PROMPTS.get(criterion.strip().lower())
    if known is not None:
        return known
    label = criterion.replace("_", " ").strip().capitalize() or "Criterion"
    return f"{label} — confirm it with the customer and record it on the deal."


def _label(criterion: str) -> str:
    return criterion.replace("_", " ").strip().capitalize()


def follow_up_subject(deal_name: str | None, gaps: Sequence[Gap], status: str | None) -> str:
    """task_subject's line, naming each gap by its framework label: "[bant-sync] Acme: confirm Economic
    buyer, Champion"; POCs and qualify-out deals say so. At most 255 characters."""
    what = ", ".join(gap.label for gap in gaps) or "qualification"
    name = visible(deal_name or "", newlines=False).strip() or "deal"
    flag = _STATUS_WORDS.get(status or "")
    subject = f"{SUBJECT_PREFIX} {name}: " + (f"{flag} — confirm {what}" if flag else f"confirm {what}")
    subject = visible(subject, newlines=False)
    if len(subject) <= SUBJECT_MAX:
        return subject
    return subject[: SUBJECT_MAX - 1] + "…"


def _question(gap: Gap) -> str:
    """What to ask the buyer: the framework's hint, else the built-in or generic prompt for the criterion
    (whose own leading label gives way to the gap's)."""
    if gap.hint.strip():
        return gap.hint.strip()
    _, _, ask = prompt_for(gap.criterion).partition(" — ")
    return ask[:1].upper() + ask[1:]


def _now(gap: Gap) -> str:
    """The reason without its leading "<Label>: ", which the block already names."""
    return gap.reason.removeprefix(f"{gap.label}: ")


REASON_SEPARATOR = " — "
"""Between a reason and its hint on a line of the reasons field (the deal-page panel and card split on it)."""

REASONS_MAX = 32_000
"""Salesforce's BANT_Reasons__c is a 32,768-character long text area; HubSpot's string holds 65,536."""


def reasons_text(assessment: Assessment) -> str:
    """What the deal's reasons field shows: one line per missing criterion, `<reason> — <hint>`, in
    framework order, then one line about the snooze when the deal has one. Empty for a deal with neither
    (qualified, not evaluated). Deterministic, so an unchanged verdict gives the same text."""
    lines = [
        visible(f"{gap.reason}{REASON_SEPARATOR}{_question(gap)}", newlines=False) for gap in assessment.gaps
    ]
    if assessment.snooze is not None:
        lines.append(visible(assessment.snooze.note, newlines=False))
    text = "\n".join(lines)
    return text if len(text) <= REASONS_MAX else text[: REASONS_MAX - 1] + "…"


def snooze_line(reasons: str | None) -> str | None:
    """The snooze line of a reasons field as bant-sync wrote it, None when it has none."""
    for line in (reasons or "").replace("\r\n", "\n").split("\n"):
        if line.startswith(NOTE_PREFIXES):
            return line
    return None


def snoozed_description(deal_name: str | None, snooze: Snooze, by_name: str | None) -> str:
    """The note a snoozed deal's task is completed with."""
    name = visible(deal_name or "", newlines=False).strip() or "this deal"
    who = f" by {visible(by_name, newlines=False)}" if by_name else ""
    until = snooze.until.isoformat() if snooze.until is not None else "?"
    lines = [
        f"Snoozed{who} until {until}: {visible(snooze.reason, newlines=False)}",
        f"bant-sync completed this follow-up while {name} is snoozed. If the deal is still missing "
        f"criteria on {until}, the flag comes back and this task reopens.",
    ]
    return "\n".join(lines)


def follow_up_description(
    deal_name: str | None,
    gaps: Sequence[Gap],
    status: str | None,
    field_names: Mapping[str, str],
    reopened: bool = False,
    snooze: Snooze | None = None,
) -> str:
    """The task body: one block per gap, in the order given (framework order), with the question to put to
    the buyer, why the current value does not count, and the CRM field to update (`field_names` maps a
    canonical or custom deal field to the CRM's name for it; the line is left out when it has none).
    Deterministic, so an unchanged assessment yields the same text; at most 32,000 characters."""
    name = visible(deal_name or "", newlines=False).strip() or "this deal"
    lines: list[str] = []
    if reopened:
        missing = ", ".join(gap.label for gap in gaps) or "qualification"
        lines.append(f"Reopened by bant-sync: {name} is still missing {missing}.")
    lines.append(f"bant-sync found qualification gaps on {name}. Please confirm with the customer:")
    for gap in gaps:
        lines.append(f"- {gap.label}: {_question(gap)}")
        lines.append(f"  Now: {_now(gap)}")
        crm_field = field_names.get(gap.field)
        if crm_field:
            lines.append(f"  Update: {crm_field}")
    if status == "poc_unqualified":
        lines.append("This is a POC: every criterion is required before the POC goes ahead.")
    elif status == "qualify_out":
        lines.append("This deal has been unqualified for a long time: qualify it or close it out.")
    if snooze is not None and snooze.state is SnoozeState.IGNORED:
        lines.append(f"{snooze.note}. Fix the snooze fields on the deal, or qualify it.")
    elif snooze is not None and snooze.state is SnoozeState.ENDED:
        lines.append(f"{snooze.note}: the deal is flagged again.")
    lines.append("Update the fields on the deal; this task completes itself once the deal qualifies.")
    text = visible("\n".join(lines))
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def add_business_days(start: date, days: int, holidays: Collection[date] = ()) -> date:
    """`start` moved forward by `days` working days (Monday–Friday, skipping `holidays`). Zero days from a
    weekend or holiday rolls forward to the next working day."""
    if days < 0:
        raise ValueError("days must be >= 0")
    current = start
    while current.weekday() >= 5 or current in holidays:
        current += timedelta(days=1)
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in holidays:
            remaining -= 1
    return current


def due_date(today: date, business_days: int, holidays: Collection[date] = ()) -> date:
    """When a new or re-opened follow-up task is due."""
    return add_business_days(today, business_days, holidays)
