"""The canonical, CRM-neutral values the rules work on: a deal in, an assessment out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rules.snooze import Snooze

Value = str | int | float | Decimal | bool | date | datetime | None
"""A field value as a connector or an export delivers it. Strings are judged as text, numbers or dates."""

CANONICAL_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "owner_id",
    "stage",
    "pipeline",
    "deal_type",
    "amount",
    "close_date",
    "budget",
    "authority",
    "need",
    "timing",
    "modified_at",
    "flagged_since",
    "snooze_until",
    "snooze_reason",
    "modified_by",
)

_EMPTY: Mapping[str, Value] = MappingProxyType({})


class Status(StrEnum):
    """Stable machine values written to the CRM; labels are configurable elsewhere."""

    QUALIFIED = "qualified"
    NEEDS_QUALIFICATION = "needs_qualification"
    POC_UNQUALIFIED = "poc_unqualified"
    QUALIFY_OUT = "qualify_out"
    NOT_EVALUATED = "not_evaluated"
    SNOOZED = "snoozed"

    @property
    def is_unqualified(self) -> bool:
        """Flagged, with a follow-up task open."""
        return self in _UNQUALIFIED

    @property
    def is_flagged(self) -> bool:
        """Unqualified or snoozed: the deal still misses criteria, and its qualify-out clock runs on (a
        snooze acknowledges the flag; it does not reset how long the deal has been unqualified)."""
        return self in _FLAGGED


_UNQUALIFIED = frozenset({Status.NEEDS_QUALIFICATION, Status.POC_UNQUALIFIED, Status.QUALIFY_OUT})
_FLAGGED = _UNQUALIFIED | {Status.SNOOZED}


@dataclass(frozen=True, slots=True)
class DealFlags:
    """What the CRM currently shows in bant-sync's own output fields (None where the field is empty)."""

    status: str | None = None
    missing: tuple[str, ...] | None = None
    score: int | None = None
    checked_at: datetime | None = None
    task_id: str | None = None
    reasons: str | None = None


@dataclass(frozen=True, slots=True)
class Deal:
    """One open opportunity/deal, translated out of its CRM by a connector (or read from an export)."""

    id: str
    name: str | None = None
    owner_id: str | None = None
    stage: str | None = None
    pipeline: str | None = None
    deal_type: str | None = None
    amount: Value = None
    close_date: date | None = None
    budget: Value = None
    authority: Value = None
    need: Value = None
    timing: Value = None
    modified_at: datetime | None = None
    flagged_since: date | None = None
    flags: DealFlags = field(default_factory=DealFlags)
    extra: Mapping[str, Value] = field(default_factory=lambda: _EMPTY)
    snooze_until: date | None = None
    snooze_reason: Value = None
    modified_by: str | None = None
    snoozed_on: date | None = None
    """The day bant-sync first saw the current `snooze_until` (from the worker's state; None: today)."""

    def value(self, field_name: str) -> Value:
        """The value of a canonical field, or of a custom one carried in `extra`."""
        if field_name in _DEAL_VALUE_FIELDS:
            value: Value = getattr(self, field_name)
            return value
        return self.extra.get(field_name)


_DEAL_VALUE_FIELDS = frozenset(CANONICAL_FIELDS)


@dataclass(frozen=True, slots=True)
class Gap:
    """One missing criterion, with what a follow-up task needs to tell the rep what to ask the buyer.

    `field` is the deal field the criterion reads (a canonical one such as "budget", or a custom field name),
    so a connector can name the CRM field to update; `reason` is the sentence in `Assessment.reasons`.
    """

    criterion: str
    label: str
    hint: str
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict on one deal at one date.

    `missing` lists criterion names in framework order; `reasons` holds one sentence per missing criterion;
    `flagged_since` is the date the deal became unqualified (kept from the deal, or today when it just did),
    None when it is not unqualified; `gaps` holds one Gap per missing criterion, in the same order.
    """

    deal_id: str
    status: Status
    missing: tuple[str, ...]
    score: int
    reasons: tuple[str, ...]
    is_poc: bool
    flagged_since: date | None
    gaps: tuple[Gap, ...] = ()
    snooze: Snooze | None = None


# Fast constructors for the two objects evaluate() builds per deal. A frozen dataclass's __init__ sets each
# field through object.__setattr__, which costs more than the rest of building a Gap; setting the slots
# directly gives the same object (equal, hashable, immutable) in about a third of the time, which keeps
# the rules above 100,000 assessments per second. The unpacking below fails at import if a field is
# added or removed without updating these functions.
_new = object.__new__
_gap_criterion, _gap_label, _gap_hint, _gap_field, _gap_reason = (
    getattr(Gap, f.name).__set__ for f in fields(Gap)
)
(
    _a_deal_id,
    _a_status,
    _a_missing,
    _a_score,
    _a_reasons,
    _a_is_poc,
    _a_flagged_since,
    _a_gaps,
    _a_snooze,
) = (getattr(Assessment, f.name).__set__ for f in fields(Assessment))


def new_gap(criterion: str, label: str, hint: str, field: str, reason: str) -> Gap:
    """Gap(criterion, label, hint, field, reason), built faster."""
    gap = _new(Gap)
    _gap_criterion(gap, criterion)
    _gap_label(gap, label)
    _gap_hint(gap, hint)
    _gap_field(gap, field)
    _gap_reason(gap, reason)
    return gap


def new_assessment(
    deal_id: str,
    status: Status,
    missing: tuple[str, ...],
    score: int,
    reasons: tuple[str, ...],
    is_poc: bool,
    flagged_since: date | None,
    gaps: tuple[Gap, ...] = (),
    snooze: Snooze | None = None,
) -> Assessment:
    """Assessment(...) with the same arguments, built faster."""
    assessment = _new(Assessment)
    _a_deal_id(assessment, deal_id)
    _a_status(assessment, status)
    _a_missing(assessment, missing)
    _a_score(assessment, score)
    _a_reasons(assessment, reasons)
    _a_is_poc(assessment, is_poc)
    _a_flagged_since(assessment, flagged_since)
    _a_gaps(assessment, gaps)
    _a_snooze(assessment, snooze)
    return assessment
