"""Checks: does one field value satisfy a criterion?

A value is first classified. Null, blank and placeholder values ("TBD", "n/a", …) are missing before any
check runs: hard gates in a CRM produce junk like "TBD" and we do not reward it. Otherwise a criterion's
checks are alternatives (any one passing is enough), judged by the kind of value: a number by the number
checks, a date by the date checks, when the criterion has any; everything else by the text checks. So
Timing = [date_not_past, present] accepts "Q3 board meeting" but not a decision date that has passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from rules.model import Value

DEFAULT_PLACEHOLDERS: frozenset[str] = frozenset(
    {"tbd", "n/a", "na", "none", "unknown", "?", "-", "--", "x", "test", "0"}
)


class CheckKind(StrEnum):
    PRESENT = "present"
    POSITIVE_NUMBER = "positive_number"
    TRUE = "true"
    MIN_LENGTH = "min_length"
    DATE_NOT_PAST = "date_not_past"
    ONE_OF = "one_of"


class ValueKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"


_TYPED_KIND = {CheckKind.POSITIVE_NUMBER: ValueKind.NUMBER, CheckKind.DATE_NOT_PAST: ValueKind.DATE}
_NUMBER_TEXT = re.compile(r"^[+-]?[$€£¥]?\s?[+-]?(\d{1,3}([,_ ]\d{3})+|\d+)(\.\d+)?\s?[kKmM]?$")
_MULTIPLIER = {"k": Decimal(1000), "m": Decimal(1_000_000)}


@dataclass(frozen=True, slots=True)
class Check:
    """One check of a criterion: `kind` plus its argument (`min_length` N, `one_of` choices, lowercased)."""

    kind: CheckKind
    length: int = 0
    choices: frozenset[str] = frozenset()

    @property
    def value_kind(self) -> ValueKind | None:
        return _TYPED_KIND.get(self.kind)

    def describe(self) -> str:
        if self.kind is CheckKind.MIN_LENGTH:
            return f"min_length:{self.length}"
        if self.kind is CheckKind.ONE_OF:
            return "one_of:[" + ", ".join(sorted(self.choices)) + "]"
        return self.kind.value


Verdict = str | None
"""None when the value passes; otherwise the reason it fails, phrased to follow "<Label>: "."""


def parse_number(text: str) -> Decimal | None:
    """A number written the way people type budgets: "50000", "$50,000", "1.5M", "250k"."""
    candidate = text.strip()
    if not _NUMBER_TEXT.match(candidate):
        return None
    multiplier = _MULTIPLIER.get(candidate[-1].lower(), Decimal(1))
    digits = re.sub(r"[^\d.+-]", "", candidate if multiplier == 1 else candidate[:-1])
    try:
        return Decimal(digits) * multiplier
    except InvalidOperation:
        return None


def parse_date(text: str) -> date | None:
    """An ISO date, or the date part of an ISO datetime ("2026-11-27", "2026-11-27T10:00:00Z")."""
    candidate = text.strip()
    if len(candidate) < 10 or candidate[4] != "-" or candidate[7] != "-":
        return None
    try:
        if len(candidate) == 10:
            return date.fromisoformat(candidate)
        return datetime.fromisoformat(candidate.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def _quote(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return "'" + shown + "'"


def _passes(check: Check, value: Value, text: str, today: date) -> Verdict:
    kind = check.kind
    if kind is CheckKind.PRESENT:
        return None
    if kind is CheckKind.MIN_LENGTH:
        length = len(text)
        if length >= check.length:
            return None
        return f"{_quote(text)} is too short ({length} of at least {check.length} characters)"
    if kind is CheckKind.POSITIVE_NUMBER:
        number = value if isinstance(value, (int, float, Decimal)) else parse_number(text)
        if number is None:
            return f"{_quote(text)} is not a number"
        return None if number > 0 else f"{_quote(text)} is not a positive amount"
    if kind is CheckKind.DATE_NOT_PAST:
        when = value if isinstance(value, date) else parse_date(text)
        if isinstance(when, datetime):
            when = when.date()
        if when is None:
            return f"{_quote(text)} is not a date"
        return None if when >= today else f"the date {when.isoformat()} has passed"
    if kind is CheckKind.TRUE:
        if value is True or text.lower() in {"true", "yes", "y", "1"}:
            return None
        return f"{_quote(text)} is not confirmed (expected yes/true)"
    if text.lower() in check.choices:
        return None
    return f"{_quote(text)} is not one of " + ", ".join(sorted(check.choices))


def classify(value: Value, has_number_check: bool, has_date_check: bool) -> ValueKind:
    """Which family of checks judges this (present, non-placeholder) value."""
    if isinstance(value, bool):
        return ValueKind.BOOLEAN
    if isinstance(value, (int, float, Decimal)):
        return ValueKind.NUMBER
    if isinstance(value, date):
        return ValueKind.DATE
    text = str(value)
    if has_date_check and parse_date(text) is not None:
        return ValueKind.DATE
    if has_number_check and parse_number(text) is not None:
        return ValueKind.NUMBER
    return ValueKind.TEXT


def compile_checks(
    checks: tuple[Check, ...], placeholders: frozenset[str]
) -> Callable[[Value, date], Verdict]:
    """Turn a criterion's checks into one fast function `(value, today) -> reason or None`."""
    has_number = any(c.value_kind is ValueKind.NUMBER for c in checks)
    has_date = any(c.value_kind is ValueKind.DATE for c in checks)
    by_kind: dict[ValueKind, tuple[Check, ...]] = {}
    untyped = tuple(c for c in checks if c.value_kind is None)
    for value_kind in ValueKind:
        typed = tuple(c for c in checks if c.value_kind is value_kind)
        by_kind[value_kind] = typed or untyped or checks

    def judge(value: Value, today: date) -> Verdict:
        if value is None:
            return "missing"
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return "blank"
            if text.lower() in placeholders:
                return f"{_quote(text)} is a placeholder"
        else:
            text = value.isoformat() if isinstance(value, date) else str(value)
            if str(value).lower() in placeholders and not isinstance(value, bool):
                return f"{_quote(text)} is a placeholder"
        candidates = by_kind[classify(value, has_number, has_date)]
        if not candidates:
            return f"{_quote(text)} is not an accepted value"
        first_failure: Verdict = None
        for check in candidates:
            verdict = _passes(check, value, text, today)
            if verdict is None:
                return None
            first_failure = first_failure or verdict
        return first_failure

    return judge
