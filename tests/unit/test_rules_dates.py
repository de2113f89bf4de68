"""Dates in the forms people type, judged by the calendar: a period is past only when its last day is."""

from __future__ import annotations

from datetime import date

import pytest

from rules import DateForm, DateRules, SlashOrder, parse_check
from rules.checks import compile_checks
from rules.dates import DEFAULT_DATE_RULES, Precision, When, month_end

TODAY = date(2026, 11, 27)
TIMING = (parse_check("date_not_past"), parse_check("present"))


def timing(value: str, today: date = TODAY, dates: DateRules = DEFAULT_DATE_RULES) -> str | None:
    return compile_checks(TIMING, date_rules=dates)(value, today)


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        ("Q1 2024", "'Q1 2024' has passed"),
        ("q1-2024", "'q1-2024' has passed"),
        ("2024 Q1", "'2024 Q1' has passed"),
        ("12/31/2024", "'12/31/2024' (2024-12-31) has passed"),
        ("31/12/2024", "'31/12/2024' (2024-12-31) has passed"),
        ("31.12.2024", "'31.12.2024' (2024-12-31) has passed"),
        ("Dec 2024", "'Dec 2024' has passed"),
        ("December 2024", "'December 2024' has passed"),
        ("31 Dec 2024", "'31 Dec 2024' (2024-12-31) has passed"),
        ("Dec 31, 2024", "'Dec 31, 2024' (2024-12-31) has passed"),
        ("2025", "'2025' has passed"),
        ("2026-11-26", "the date 2026-11-26 has passed"),
        ("Q3 2026", "'Q3 2026' has passed"),
        ("Oct 2026", "'Oct 2026' has passed"),
    ],
)
def test_past_dates_in_other_forms_are_missing(value: str, verdict: str) -> None:
    """A date, month, quarter or year that is over fails, with a reason quoting the value."""
    assert timing(value) == verdict


@pytest.mark.parametrize(
    "value",
    [
        "Q3 2099",
        "Q1 2099",
        "Dec 2099",
        "2099-03-31",
        "2026-11-27",
        "Q4 2026",
        "Nov 2026",
        "2026",
        "11/27/2026",
        "27.11.2026",
        "next quarter",
        "end of year",
    ],
)
def test_current_and_future_dates_pass(value: str) -> None:
    """Today, this month, this quarter and this year are not past; nor is free text about timing."""
    assert timing(value) is None


@pytest.mark.parametrize(
    ("value", "day", "passes"),
    [
        ("Nov 2026", date(2026, 11, 30), True),
        ("Nov 2026", date(2026, 12, 1), False),
        ("Q4 2026", date(2026, 12, 31), True),
        ("Q4 2026", date(2027, 1, 1), False),
        ("2026", date(2026, 12, 31), True),
        ("2026", date(2027, 1, 1), False),
    ],
)
def test_a_period_is_past_only_after_its_last_day(value: str, day: date, passes: bool) -> None:
    """Months, quarters and years are judged by their last day."""
    assert (timing(value, day) is None) is passes


@pytest.mark.parametrize(
    ("value", "order", "day"),
    [
        ("03/04/2027", SlashOrder.MONTH_FIRST, date(2027, 3, 4)),
        ("03/13/2027", SlashOrder.MONTH_FIRST, date(2027, 3, 13)),
        ("13/03/2027", SlashOrder.MONTH_FIRST, date(2027, 3, 13)),
        ("03/04/2027", SlashOrder.DAY_FIRST, date(2027, 4, 3)),
        ("13/03/2027", SlashOrder.DAY_FIRST, date(2027, 3, 13)),
        ("03/13/2027", SlashOrder.DAY_FIRST, date(2027, 3, 13)),
    ],
)
def test_slash_dates_follow_the_documented_order(value: str, order: SlashOrder, day: date) -> None:
    """a/b/yyyy is month/day unless a > 12 (month_first), or day/month unless b > 12 (day_first)."""
    assert DateRules(slash_order=order).read(value) == When(day, Precision.DAY)


@pytest.mark.parametrize("value", ["02/30/2027", "13/13/2027", "31.02.2027", "Q5 2027", "Smarch 2027"])
def test_impossible_dates_are_not_dates(value: str) -> None:
    """A date-shaped value naming no real day is not read as a date."""
    assert DEFAULT_DATE_RULES.read(value) is None


def test_iso_dates_are_plain_dates() -> None:
    """ISO dates and datetimes read as the day they name."""
    assert DEFAULT_DATE_RULES.read("2027-01-15") == date(2027, 1, 15)
    assert DEFAULT_DATE_RULES.read("2027-01-15T10:00:00Z") == date(2027, 1, 15)


def test_only_the_enabled_forms_are_read() -> None:
    """With no extra forms a quarter is free text (so `present` accepts it); ISO is always read."""
    iso_only = DateRules(formats=frozenset())
    assert timing("Q1 2024", dates=iso_only) is None
    assert timing("2026-01-01", dates=iso_only) == "the date 2026-01-01 has passed"
    quarters = DateRules(formats=frozenset({DateForm.QUARTER}))
    assert timing("Q1 2024", dates=quarters) == "'Q1 2024' has passed"
    assert timing("12/31/2024", dates=quarters) is None


@pytest.mark.parametrize(
    ("year", "month", "last"),
    [(2028, 2, 29), (2027, 2, 28), (2100, 2, 28), (2000, 2, 29), (2027, 12, 31), (2027, 4, 30)],
)
def test_month_end(year: int, month: int, last: int) -> None:
    """The last day of a month, leap years included."""
    assert month_end(year, month) == date(year, month, last)
