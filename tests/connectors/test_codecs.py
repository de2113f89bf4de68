"""The CRM value codecs: every accepted form, blanks, garbage, and naive datetimes refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.codecs import (
    epoch_millis,
    format_millis,
    format_seconds,
    join_list,
    parse_date,
    parse_datetime,
    parse_number,
    split_list,
)

MOMENT = datetime(2026, 11, 27, 20, 54, 14, 123000, tzinfo=UTC)
MILLIS = 1795812854123


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-27T20:54:14.123Z", MOMENT),
        ("2026-11-27T20:54:14.123+0000", MOMENT),
        ("2026-11-27T20:54:14.123+00:00", MOMENT),
        ("2026-11-27T15:54:14.123-0500", MOMENT),
        ("2026-11-28T01:54:14.123+05:00", MOMENT),
        ("  2026-11-27T20:54:14.123Z ", MOMENT),
        (str(MILLIS), MOMENT),
        (MILLIS, MOMENT),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("   ", None),
    ],
    ids=[
        "z",
        "sf-basic-offset",
        "extended-offset",
        "negative-offset",
        "positive-offset",
        "padded",
        "epoch-text",
        "epoch-int",
        "epoch-zero",
        "none",
        "empty",
        "blank",
    ],
)
def test_parse_datetime(raw: str | int | None, expected: datetime | None) -> None:
    """Every CRM datetime form reads as the same tz-aware UTC instant; blank is None."""
    parsed = parse_datetime(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    ["yesterday", "2026-13-01T00:00:00Z", "2026-11-27T20:54:14", "2026-11-27", "-5", "12.5", True],
    ids=["word", "bad-month", "naive", "date-only", "negative", "decimal", "bool"],
)
def test_parse_datetime_refuses(raw: str | int) -> None:
    """Garbage, a zone-less datetime and a bare date are ValueError, never a guess."""
    with pytest.raises(ValueError, match=r"datetime|time zone"):
        parse_datetime(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-27", date(2026, 11, 27)),
        (" 2026-11-27 ", date(2026, 11, 27)),
        ("2026-11-27T00:00:00.000Z", date(2026, 11, 27)),
        ("1795737600000", date(2026, 11, 27)),
        (1795737600000, date(2026, 11, 27)),
        ("2026-11-27T23:30:00-0500", date(2026, 11, 28)),
        (None, None),
        ("", None),
    ],
    ids=[
        "iso-date",
        "padded",
        "midnight-utc",
        "epoch-text",
        "epoch-int",
        "utc-date-of-offset",
        "none",
        "empty",
    ],
)
def test_parse_date(raw: str | int | None, expected: date | None) -> None:
    """A date reads from YYYY-MM-DD or from a datetime's UTC date; blank is None."""
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["31/12/2026", "2026-02-30", "2026-11-27T00:00:00", "soon"],
    ids=["dmy", "no-such-day", "naive", "word"],
)
def test_parse_date_refuses(raw: str) -> None:
    """Garbage and zone-less datetimes are ValueError."""
    with pytest.raises(ValueError, match=r"date|time zone"):
        parse_date(raw)


@pytest.mark.parametrize(
    ("moment", "millis", "seconds", "epoch"),
    [
        (MOMENT, "2026-11-27T20:54:14.123Z", "2026-11-27T20:54:14Z", str(MILLIS)),
        (
            MOMENT.astimezone(timezone(timedelta(hours=-5))),
            "2026-11-27T20:54:14.123Z",
            "2026-11-27T20:54:14Z",
            str(MILLIS),
        ),
        (
            MOMENT.replace(microsecond=999999),
            "2026-11-27T20:54:14.999Z",
            "2026-11-27T20:54:14Z",
            "1795812854999",
        ),
        (
            datetime(2004, 3, 7, 2, 8, 51, 860000, tzinfo=UTC),
            "2004-03-07T02:08:51.860Z",
            "2004-03-07T02:08:51Z",
            "1078625331860",
        ),
    ],
    ids=["utc", "offset-to-utc", "floored", "float-rounding-instant"],
)
def test_formatters(moment: datetime, millis: str, seconds: str, epoch: str) -> None:
    """Formatting is UTC with Z, floored; epoch millis are exact (integer arithmetic) and round-trip."""
    assert format_millis(moment) == millis
    assert format_seconds(moment) == seconds
    assert epoch_millis(moment) == epoch
    assert parse_datetime(epoch) == parse_datetime(millis)


@pytest.mark.parametrize("encode", [format_millis, format_seconds, epoch_millis], ids=lambda f: f.__name__)
def test_formatters_refuse_naive_datetimes(encode: object) -> None:
    """A naive datetime is refused by every encoder rather than read in the machine's local zone."""
    assert callable(encode)
    with pytest.raises(ValueError, match="naive"):
        encode(datetime(2026, 11, 27, 20, 54, 14))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("50000", Decimal("50000")),
        (" 12000.50 ", Decimal("12000.50")),
        ("-3", Decimal("-3")),
        ("1e3", Decimal("1e3")),
        (12000, Decimal(12000)),
        (12000.5, Decimal("12000.5")),
        (0.1, Decimal("0.1")),
        (Decimal("7"), Decimal("7")),
        (None, None),
        ("", None),
        ("  ", None),
        ("$50,000", "$50,000"),
        ("lots", "lots"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        (float("inf"), "inf"),
        (True, "True"),
        (date(2026, 1, 5), "2026-01-05"),
    ],
    ids=[
        "int-text",
        "decimal-text",
        "negative",
        "exponent",
        "int",
        "float",
        "float-shortest-repr",
        "decimal",
        "none",
        "empty",
        "blank",
        "formatted-kept",
        "word-kept",
        "nan-kept",
        "infinity-kept",
        "float-inf-kept",
        "bool-kept",
        "other-as-text",
    ],
)
def test_parse_number(raw: object, expected: Decimal | str | None) -> None:
    """Numbers read as Decimal (floats via str), blank as None, anything else as its original text."""
    parsed = parse_number(raw)
    assert parsed == expected
    assert type(parsed) is type(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("budget;need", ("budget", "need")),
        ("budget; need ", ("budget", "need")),
        (" budget ;; ;need;", ("budget", "need")),
        ("timing", ("timing",)),
        (None, None),
        ("", None),
        ("  ", None),
        (" ; ;", None),
    ],
    ids=["plain", "spaced", "empties-dropped", "one", "none", "empty", "blank", "only-separators"],
)
def test_split_list(raw: str | None, expected: tuple[str, ...] | None) -> None:
    """`;`-lists split, strip and drop empties; a field with no part is None."""
    assert split_list(raw) == expected


@pytest.mark.parametrize(
    ("parts", "expected"),
    [(("budget", "need"), "budget;need"), (("timing",), "timing"), ((), "")],
    ids=["two", "one", "none-clears"],
)
def test_join_list(parts: tuple[str, ...], expected: str) -> None:
    """Lists encode as `;`-joined text and split back to the same parts."""
    assert join_list(parts) == expected
    assert split_list(expected) == (parts or None)
