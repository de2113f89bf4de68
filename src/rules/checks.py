"""Checks: does one field value satisfy a criterion?

A value is first classified. Null, blank, placeholder ("TBD", "T.B.D.", "n/a") and negation ("no budget
yet", "not sure") values are missing before any check runs: hard gates in a CRM produce junk and we do not
reward it (rules.text). Otherwise a criterion's checks are alternatives (any one passing is enough), judged
by the kind of value: a number by the number checks, a date by the date checks, when the criterion has
any; everything else by the text checks. So Timing = [date_not_past, present] accepts "Q3 board meeting"
but not a decision date, month or quarter that has passed (rules.dates). Free text judged by `present` or
`min_length` must also look like text: not one character repeated, not without a letter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from rules.dates import DEFAULT_DATE_RULES, DateRules, Precision, When, parse_date
from rules.model import Value
from rules.text import DEFAULT_PLACEHOLDERS, DEFAULT_TEXT_RULES, NO_LETTERS, TextRules

__all__ = [
    "BLANK",
    "DEFAULT_PLACEHOLDERS",
    "FIXED_VERDICTS",
    "MISSING",
    "Check",
    "CheckKind",
    "ValueKind",
    "Verdict",
    "classify",
    "compile_checks",
    "parse_date",
    "parse_number",
]


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
_NOT_NUMBER = re.compile(r"[^\d.+-]")
_ONE = Decimal(1)
_MULTIPLIER = {"k": Decimal(1000), "m": Decimal(1_000_000)}
_TRUE_WORDS = frozenset({"true", "yes", "y", "1"})


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

MISSING = "missing"
BLANK = "blank"
FIXED_VERDICTS = (MISSING, BLANK)
"""The verdicts that do not depend on the value."""


def parse_number(text: str) -> Decimal | None:
    """A number written the way people type budgets: "50000", "$50,000", "1.5M", "250k"."""
    candidate = text.strip()
    if candidate.isascii() and candidate.isdigit():
        return Decimal(candidate)
    if not _NUMBER_TEXT.match(candidate):
        return None
    multiplier = _MULTIPLIER.get(candidate[-1].lower(), _ONE)
    digits = _NOT_NUMBER.sub("", candidate if multiplier is _ONE else candidate[:-1])
    try:
        return Decimal(digits) * multiplier
    except InvalidOperation:
        return None


def _quote(text: str, limit: int = 40) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return "'" + shown + "'"


Parsed = Decimal | date | When | None
"""A text value as the judge read it once: a number, a date, or neither."""

CheckFn = Callable[[Value, str, Parsed, date], Verdict]
"""One compiled check: (value, its stripped text, what the judge parsed from it, today) -> reason or None."""


def _read_date(value: Value, text: str, dates: DateRules) -> date | When | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return dates.read(text) if isinstance(value, str) else None


def _compile_check(check: Check, text_rules: TextRules, dates: DateRules) -> CheckFn:
    """One check as a closure over its argument and the framework's rules: no per-value dispatch on kind."""
    kind = check.kind
    junk = text_rules.junk

    if kind is CheckKind.PRESENT:

        def present(value: Value, text: str, parsed: Parsed, today: date) -> Verdict:
            if not isinstance(value, str):
                return None
            problem = junk(text)
            if problem is None:
                return None
            # `present` takes a number or a date (in any form we know) as a value even without letters; free
            # text needs them.
            if problem is NO_LETTERS and (
                parse_number(text) is not None or DEFAULT_DATE_RULES.read(text) is not None
            ):
                return None
            return f"{_quote(text)} {problem}"

        return present

    if kind is CheckKind.MIN_LENGTH:
        minimum = check.length

        def min_length(value: Value, text: str, parsed: Parsed, today: date) -> Verdict:
            if isinstance(value, str):
                problem = junk(text)
                if problem is not None:
                    return f"{_quote(text)} {problem}"
            length = len(text)
            if length >= minimum:
                return None
            return f"{_quote(text)} is too short ({length} of at least {minimum} characters)"

        return min_length

    if kind is CheckKind.POSITIVE_NUMBER:

        def positive_number(value: Value, text: str, parsed: Parsed, today: date) -> Verdict:
            if isinstance(value, (int, float, Decimal)):
                number: Decimal | int | float | None = value
            else:
                number = parsed if isinstance(parsed, Decimal) else parse_number(text)
            if number is None:
                return f"{_quote(text)} is not a number"
            return None if number > 0 else f"{_quote(text)} is not a positive amount"

        return positive_number

    if kind is CheckKind.DATE_NOT_PAST:

        def date_not_past(value: Value, text: str, parsed: Parsed, today: date) -> Verdict:
            when = parsed if isinstance(parsed, (date, When)) else _read_date(value, text, dates)
            if when is None:
                return f"{_quote(text)} is not a date"
            if isinstance(when, date):
                return None if when >= today else f"the date {when.isoformat()} has passed"
            last_day = when.last_day
            if last_day >= today:
                return None
            if when.precision is Precision.DAY:
                return f"{_quote(text)} ({last_day.isoformat()}) has passed"
            return f"{_quote(text)} has passed"

        return date_not_past

    if kind is CheckKind.TRUE:

        def true(value: Value, text: str, parsed: Parsed, today: date) -> Verdict:
            if value is True or text.lower() in _TRUE_WORDS:
                return None
            return f"{_quote(text)} is not confirmed (expected yes/true)"

        return true

    choices = check.choices
    listed = ", ".join(sorted(choices))

    def one_of(value: Value, text: str, parsed: Parsed, today: date) -> Verdict:
        if text.lower() in choices:
            return None
        return f"{_quote(text)} is not one of {listed}"

    return one_of


def classify(
    value: Value, has_number_check: bool, has_date_check: bool, dates: DateRules = DEFAULT_DATE_RULES
) -> ValueKind:
    """Which family of checks judges this (present, non-placeholder) value."""
    if isinstance(value, bool):
        return ValueKind.BOOLEAN
    if isinstance(value, (int, float, Decimal)):
        return ValueKind.NUMBER
    if isinstance(value, date):
        return ValueKind.DATE
    text = str(value).strip()
    if has_date_check and dates.read(text) is not None:
        return ValueKind.DATE
    if has_number_check and parse_number(text) is not None:
        return ValueKind.NUMBER
    return ValueKind.TEXT


def compile_checks(
    checks: tuple[Check, ...],
    text_rules: TextRules = DEFAULT_TEXT_RULES,
    date_rules: DateRules = DEFAULT_DATE_RULES,
) -> Callable[[Value, date], Verdict]:
    """Turn a criterion's checks into one fast function `(value, today) -> reason or None`."""
    has_number = any(c.value_kind is ValueKind.NUMBER for c in checks)
    has_date = any(c.value_kind is ValueKind.DATE for c in checks)
    choices = frozenset().union(*(c.choices for c in checks))
    rules = text_rules.without(choices) if choices else text_rules
    untyped = tuple(c for c in checks if c.value_kind is None)
    by_kind: dict[ValueKind, tuple[CheckFn, ...]] = {}
    for value_kind in ValueKind:
        typed = tuple(c for c in checks if c.value_kind is value_kind)
        by_kind[value_kind] = tuple(_compile_check(c, rules, date_rules) for c in typed or untyped or checks)
    unknown = rules.unknown
    read_date = date_rules.read
    text_checks = by_kind[ValueKind.TEXT]
    number_checks = by_kind[ValueKind.NUMBER]
    date_checks = by_kind[ValueKind.DATE]

    def judge(value: Value, today: date) -> Verdict:
        parsed: Parsed = None
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return BLANK
            problem = unknown(text)
            if problem is not None:
                return f"{_quote(text)} {problem}"
            candidates = text_checks
            if has_date:
                parsed = read_date(text)
                if parsed is not None:
                    candidates = date_checks
            if parsed is None and has_number:
                parsed = parse_number(text)
                if parsed is not None:
                    candidates = number_checks
        elif value is None:
            return MISSING
        else:
            text = value.isoformat() if isinstance(value, date) else str(value)
            if not isinstance(value, (bool, date)) and unknown(text) is not None:
                return f"{_quote(text)} is a placeholder"
            candidates = by_kind[classify(value, has_number, has_date, date_rules)]
        if not candidates:
            return f"{_quote(text)} is not an accepted value"
        first_failure: Verdict = None
        for check in candidates:
            verdict = check(value, text, parsed, today)
            if verdict is None:
                return None
            first_failure = first_failure or verdict
        return first_failure

    return judge
