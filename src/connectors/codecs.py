"""The one place CRM values are decoded and encoded: datetimes, dates, numbers, `;`-lists, epoch millis.

Pure functions over tz-aware UTC datetimes only: a naive datetime (or a datetime string with no zone) is
refused with ValueError, never guessed at. Decoders take what a CRM returns (HubSpot: strings or null;
Salesforce: JSON strings, numbers or null) and answer None for a blank value; a value that is not blank and
not of the form raises ValueError, except `parse_number`, which hands the original text back so the rules
can say why it is not an amount.

Settled between the connectors (they used to disagree):

- `missing` (`;`-list): parts are stripped of whitespace and empty parts dropped on both CRMs
  (HubSpot kept `" need"` as is); an empty field is None on both (HubSpot read `""` as `()`).
- `amount` (number): a Decimal on both CRMs (Salesforce handed on the JSON float, HubSpot a Decimal, deal
  files the text); a float is read through its shortest repr (`Decimal(str(x))`), so 0.1 is Decimal("0.1");
  a blank amount is None (HubSpot kept `""`).
- epoch milliseconds are computed in integers (`timestamp() * 1000` is off by one millisecond for some
  instants, e.g. 2004-03-07T02:08:51.860Z).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = [
    "epoch_millis",
    "format_millis",
    "format_seconds",
    "join_list",
    "parse_date",
    "parse_datetime",
    "parse_number",
    "split_list",
    "to_utc",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_BASIC_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")
_EPOCH_MILLIS = re.compile(r"^\d{1,15}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SEPARATOR = ";"


def to_utc(moment: datetime) -> datetime:
    """The same instant in UTC; ValueError for a naive datetime (bant-sync never guesses a zone)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: bant-sync only handles tz-aware datetimes")
    return moment.astimezone(UTC)


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def parse_datetime(raw: str | int | None) -> datetime | None:
    """A CRM datetime as tz-aware UTC: ISO 8601 with `Z`, `+00:00` or `+0000` (as Salesforce writes it), or
    epoch milliseconds (text or int). None when blank; ValueError for anything else, a zone-less one too."""
    if _blank(raw):
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f"{raw!r} is not a datetime")
    if isinstance(raw, int):
        return _EPOCH + raw * _MILLISECOND
    text = raw.strip()
    if _EPOCH_MILLIS.match(text):
        return _EPOCH + int(text) * _MILLISECOND
    normalized = text[:-1] + "+00:00" if text[-1] in "Zz" else _BASIC_OFFSET.sub(r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not a datetime (ISO 8601 with a zone, or epoch milliseconds)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text[:40]!r} has no time zone; CRM datetimes carry `Z` or an offset")
    return parsed.astimezone(UTC)


def parse_date(raw: str | int | None) -> date | None:
    """A CRM date: `YYYY-MM-DD`, or a datetime (ISO with a zone, or epoch millis; HubSpot writes date
    properties as midnight UTC) read as its UTC date. None when blank; ValueError for anything else."""
    if _blank(raw):
        return None
    if isinstance(raw, str) and _ISO_DATE.match(raw.strip()):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            raise ValueError(f"{raw.strip()!r} is not a date") from None
    moment = parse_datetime(raw)
    assert moment is not None
    return moment.date()


def format_millis(moment: datetime) -> str:
    """UTC ISO 8601 to the millisecond (floored) with `Z`, as both CRMs write and accept datetimes."""
    utc = to_utc(moment)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_seconds(moment: datetime) -> str:
    """UTC ISO 8601 floored to the second with `Z`."""
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_millis(moment: datetime) -> str:
    """Milliseconds since the epoch (floored), as text: HubSpot's other datetime form."""
    return str((to_utc(moment) - _EPOCH) // _MILLISECOND)


def parse_number(raw: object) -> Decimal | str | None:
    """A number as a Decimal (a float through `str`, so 12000.5 stays exact). None when blank; a value that is
    not a finite number (a word, `NaN`, a bool) comes back as its original text, so the rules can quote it in
    their reason."""
    if _blank(raw):
        return None
    if isinstance(raw, Decimal | int) and not isinstance(raw, bool):
        number = Decimal(raw)
    elif isinstance(raw, float):
        number = Decimal(str(raw))
    elif isinstance(raw, str):
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            return raw
    else:
        return str(raw)
    return number if number.is_finite() else str(raw)


def split_list(raw: str | None) -> tuple[str, ...] | None:
    """A `;`-separated field (`missing`) as its parts, each stripped, empty parts dropped; None when the field
    holds no part at all (null, blank or only separators)."""
    if raw is None:
        return None
    parts = tuple(part.strip() for part in str(raw).split(SEPARATOR))
    kept = tuple(part for part in parts if part)
    return kept or None


def join_list(parts: Iterable[str]) -> str:
    """The `;`-separated text of a list (empty text for none, which clears the field)."""
    return SEPARATOR.join(parts)
