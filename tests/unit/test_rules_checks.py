"""Checks: each kind, placeholders, value classification, and the reasons they give."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rules import TextRules, parse_check
from rules.checks import compile_checks, parse_date, parse_number
from rules.model import Value

TODAY = date(2026, 11, 27)


def judge(checks: list[str], value: Value) -> str | None:
    return compile_checks(tuple(parse_check(c) for c in checks))(value, TODAY)


@pytest.mark.parametrize(
    ("checks", "value", "expected"),
    [
        (["present"], None, "missing"),
        (["present"], "", "blank"),
        (["present"], "   \t", "blank"),
        (["present"], "Jane Doe, CFO", None),
        (["present"], "TBD", "'TBD' is a placeholder"),
        (["present"], "  tbd ", "'tbd' is a placeholder"),
        (["present"], "N/A", "'N/A' is a placeholder"),
        (["present"], "?", "'?' is a placeholder"),
        (["present"], "--", "'--' is a placeholder"),
        (["present"], "Unknown", "'Unknown' is a placeholder"),
        (["present"], 0, "'0' is a placeholder"),
        (["present"], "Ñandú Ltd — 北京", None),
        (["positive_number"], "50000", None),
        (["positive_number"], "$50,000", None),
        (["positive_number"], "1.5M", None),
        (["positive_number"], "250k", None),
        (["positive_number"], 12.5, None),
        (["positive_number"], Decimal("3"), None),
        (["positive_number"], -5, "'-5' is not a positive amount"),
        (["positive_number"], "-100", "'-100' is not a positive amount"),
        (["positive_number"], "lots", "'lots' is not a number"),
        (["positive_number", "present"], "approved in FY27 plan", None),
        (["positive_number", "present"], "-100", "'-100' is not a positive amount"),
        (["min_length:15"], "help", "'help' is too short (4 of at least 15 characters)"),
        (["min_length:15"], "exactly fifteen", None),
        (["min_length:15"], "  padded    ", "'padded' is too short (6 of at least 15 characters)"),
        (["date_not_past"], "2026-11-27", None),
        (["date_not_past"], "2026-11-26", "the date 2026-11-26 has passed"),
        (["date_not_past"], date(2027, 1, 1), None),
        (["date_not_past"], datetime(2026, 1, 1, tzinfo=UTC), "the date 2026-01-01 has passed"),
        (["date_not_past"], "2027-01-01T10:00:00Z", None),
        (["date_not_past"], "next quarter", "'next quarter' is not a date"),
        (["date_not_past", "present"], "next quarter", None),
        (["date_not_past", "present"], "2026-01-01", "the date 2026-01-01 has passed"),
        (["true"], True, None),
        (["true"], "yes", None),
        (["true"], False, "'False' is not confirmed (expected yes/true)"),
        (["true"], "maybe", "'maybe' is not confirmed (expected yes/true)"),
        (["one_of:[Economic Buyer, Champion]"], "champion", None),
        (["one_of:[Economic Buyer, Champion]"], "coach", "'coach' is not one of champion, economic buyer"),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_check_verdicts(checks: list[str], value: Value, expected: str | None) -> None:
    """Each check passes or fails with the documented reason."""
    assert judge(checks, value) == expected


def test_long_text_is_quoted_shortened() -> None:
    """Reasons never carry a whole free-text field: long values are cut to 40 characters."""
    verdict = judge(["min_length:5000"], "why " * 250)
    assert verdict is not None
    assert len(verdict) < 120
    assert "…" in verdict


def test_custom_placeholders_replace_the_default_list() -> None:
    """A framework's own placeholder list decides what counts as junk."""
    judge_fn = compile_checks((parse_check("present"),), TextRules(placeholders=frozenset({"pending"})))
    assert judge_fn("pending", TODAY) == "'pending' is a placeholder"
    assert judge_fn("TBD", TODAY) is None


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("1,000", Decimal(1000)),
        ("€ 2.5", Decimal("2.5")),
        ("10_000", Decimal(10000)),
        ("1.2.3", None),
        ("", None),
    ],
)
def test_parse_number(text: str, number: Decimal | None) -> None:
    """Budgets are read the way people type them."""
    assert parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "day"),
    [("2026-02-03", date(2026, 2, 3)), ("2026-02-30", None), ("03/02/2026", None), ("soon", None)],
)
def test_parse_date(text: str, day: date | None) -> None:
    """parse_date reads ISO dates only (the other forms are rules.dates' job)."""
    assert parse_date(text) == day


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("min_lenght:3", "did you mean 'min_length'"),
        ("min_length:0", "positive whole number"),
        ("min_length", "positive whole number"),
        ("one_of:[]", "needs choices"),
        ("present:1", "takes no argument"),
    ],
)
def test_parse_check_errors(text: str, message: str) -> None:
    """A mistyped check is an error that says how to write it."""
    with pytest.raises(ValueError, match=message):
        parse_check(text)
