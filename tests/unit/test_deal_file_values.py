"""Deal files read amounts and dates with the connectors' codecs, so a file gives the Deal a CRM would."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from worker.cli.deal_files import deal_from_record


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("12000.50", Decimal("12000.50")),
        (" 50000 ", Decimal("50000")),
        (12000.5, Decimal("12000.5")),
        (12000, Decimal("12000")),
        ("", None),
        (None, None),
        ("$50,000", "$50,000"),
        ("lots", "lots"),
    ],
    ids=[
        "csv-text",
        "padded",
        "json-float",
        "json-int",
        "csv-blank",
        "json-null",
        "formatted-kept",
        "word-kept",
    ],
)
def test_amount_reads_as_decimal(amount: Any, expected: Decimal | str | None) -> None:
    """`amount` is a Decimal as on both CRMs; blank is None; text that is no number stays for the rules."""
    read = deal_from_record({"id": "D1", "amount": amount}).amount
    assert read == expected
    assert type(read) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-31", date(2026, 12, 31)),
        (" 2026-12-31 ", date(2026, 12, 31)),
        ("2026-12-31 00:00:00", date(2026, 12, 31)),
        ("2026-12-31T10:00:00Z", date(2026, 12, 31)),
        ("", None),
        (None, None),
    ],
    ids=["iso", "padded", "spreadsheet-time", "iso-datetime", "blank", "null"],
)
def test_dates_read_from_yyyy_mm_dd(value: Any, expected: date | None) -> None:
    """A date column reads its leading YYYY-MM-DD, whatever time an export tool put after it."""
    deal = deal_from_record({"id": "D1", "close_date": value, "flagged_since": value})
    assert deal.close_date == deal.flagged_since == expected


@pytest.mark.parametrize(
    "value",
    ["31/12/2026", "2026-02-30", "soon", 1795737600000],
    ids=["dmy", "no-such-day", "word", "epoch-millis"],
)
def test_bad_dates_are_row_errors(value: Any) -> None:
    """A date that is not YYYY-MM-DD is a row error naming the column and the value."""
    with pytest.raises(ValueError, match=r"close_date .* is not a date \(use YYYY-MM-DD\)"):
        deal_from_record({"id": "D1", "close_date": value})
