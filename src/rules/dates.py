"""Dates as people type them into a Timing field, judged by the calendar.

ISO dates ("2027-03-31", "2027-03-31T10:00:00Z") are always read. A framework's `[dates]` table picks the
other forms: `slash` (12/31/2027), `dotted` (31.12.2027), `month_name` (Dec 2027, 31 Dec 2027, Dec 31,
2027), `quarter` (Q1 2027, 2027-Q1) and `year` (2027). A value that names a month, quarter or year is past
only when its last day is before today; calendar quarters, not fiscal ones.

`a/b/yyyy` is ambiguous. With `slash_order = "month_first"` (the default) it is month/day when a <= 12
(03/04/2027 is March 4) and day/month when a > 12 (31/12/2027); with "day_first" it is day/month when
b <= 12 (03/04/2027 is 3 April) and month/day otherwise. Dotted dates are always day.month.year.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple


class DateForm(StrEnum):
    SLASH = "slash"
    DOTTED = "dotted"
    MONTH_NAME = "month_name"
    QUARTER = "quarter"
    YEAR = "year"


class SlashOrder(StrEnum):
    MONTH_FIRST = "month_first"
    DAY_FIRST = "day_first"


class Precision(StrEnum):
    """How a date in another form than ISO was written, which decides how its reason reads."""

    DAY = "day"  # "'12/31/2024' (2024-12-31) has passed"
    PERIOD = "period"  # "'Q1 2024' has passed": a month, quarter or year, judged by its last day


class When(NamedTuple):
    """A date read from a value in another form than ISO: the last day it can mean, and how it was written.
    (An ISO date is read as a plain `date`: the common case allocates nothing more.)"""

    last_day: date
    precision: Precision


DEFAULT_DATE_FORMATS: frozenset[DateForm] = frozenset(DateForm)

_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1
)}  # fmt: skip
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_ORDINAL = r"(?:st|nd|rd|th)?"
_LONGEST = 32


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


def month_end(year: int, month: int) -> date:
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return date(year, month, 29 if leap else _MONTH_DAYS[month - 1])


def _day(year: str, month: int, day: int) -> When:
    return When(date(int(year), month, day), Precision.DAY)


def _slash(order: SlashOrder) -> Callable[[re.Match[str]], When]:
    def read(match: re.Match[str]) -> When:
        a, b, year = int(match[1]), int(match[2]), match[3]
        if order is SlashOrder.DAY_FIRST:
            return _day(year, b, a) if b <= 12 else _day(year, a, b)
        return _day(year, a, b) if a <= 12 else _day(year, b, a)

    return read


def _dotted(match: re.Match[str]) -> When:
    return _day(match[3], int(match[2]), int(match[1]))


def _month_year(match: re.Match[str]) -> When:
    return When(month_end(int(match[2]), _MONTHS[match[1][:3]]), Precision.PERIOD)


def _day_month_year(match: re.Match[str]) -> When:
    return _day(match[3], _MONTHS[match[2][:3]], int(match[1]))


def _month_day_year(match: re.Match[str]) -> When:
    return _day(match[3], _MONTHS[match[1][:3]], int(match[2]))


def _quarter(quarter: str, year: str) -> When:
    return When(month_end(int(year), 3 * int(quarter)), Precision.PERIOD)


def _year(match: re.Match[str]) -> When:
    return When(date(int(match[1]), 12, 31), Precision.PERIOD)


Reader = tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], When]], ...]


def _patterns(forms: frozenset[DateForm], order: SlashOrder) -> tuple[Reader, Reader]:
    """The enabled forms' patterns, split by whether they start with a digit or a letter: a value is only
    tried against the patterns that can match its first character."""
    digit, letter = True, False
    table: list[tuple[DateForm, bool, str, Callable[[re.Match[str]], When]]] = [
        (DateForm.SLASH, digit, r"(\d{1,2})/(\d{1,2})/(\d{4})", _slash(order)),
        (DateForm.DOTTED, digit, r"(\d{1,2})\.(\d{1,2})\.(\d{4})", _dotted),
        (DateForm.MONTH_NAME, letter, _MONTH + r"[\s,/-]*(\d{4})", _month_year),
        (
            DateForm.MONTH_NAME,
            digit,
            r"(\d{1,2})" + _ORDINAL + r"[\s-]+" + _MONTH + r",?[\s-]+(\d{4})",
            _day_month_year,
        ),
        (DateForm.MONTH_NAME, letter, _MONTH + r"\s+(\d{1,2})" + _ORDINAL + r",?\s+(\d{4})", _month_day_year),
        (DateForm.QUARTER, letter, r"q([1-4])[\s/-]*(\d{4})", lambda m: _quarter(m[1], m[2])),
        (DateForm.QUARTER, digit, r"(\d{4})[\s/-]*q([1-4])", lambda m: _quarter(m[2], m[1])),
        (DateForm.YEAR, digit, r"(\d{4})", _year),
    ]
    enabled = [(lead, re.compile(pattern), read) for form, lead, pattern, read in table if form in forms]
    digit_led = tuple((pattern, read) for lead, pattern, read in enabled if lead is digit)
    letter_led = tuple((pattern, read) for lead, pattern, read in enabled if lead is letter)
    return digit_led, letter_led


@dataclass(frozen=True, slots=True)
class DateRules:
    """Which written forms `date_not_past` reads besides ISO (a framework's `[dates]` table)."""

    formats: frozenset[DateForm] = DEFAULT_DATE_FORMATS
    slash_order: SlashOrder = SlashOrder.MONTH_FIRST
    _digit_led: Reader = dataclasses.field(init=False, compare=False, repr=False)
    _letter_led: Reader = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        digit_led, letter_led = _patterns(self.formats, self.slash_order)
        object.__setattr__(self, "_digit_led", digit_led)
        object.__setattr__(self, "_letter_led", letter_led)

    def read(self, text: str) -> date | When | None:
        """The date a stripped text names (a `date` when written in ISO form), or None when it is not a date
        in an accepted form or names a day that does not exist, such as 02/30/2027."""
        iso = parse_date(text)
        if iso is not None:
            return iso
        if len(text) > _LONGEST:
            return None
        lower = text.lower()
        for pattern, read in self._digit_led if lower[:1].isdigit() else self._letter_led:
            match = pattern.fullmatch(lower)
            if match is not None:
                try:
                    return read(match)
                except ValueError:
                    return None
        return None


DEFAULT_DATE_RULES = DateRules()
