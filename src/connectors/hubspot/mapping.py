"""HubSpot deal properties <-> the canonical Deal, and our output values -> HubSpot property strings.

HubSpot returns every property value as a string (or null). Datetimes come as ISO 8601 with millis and `Z`
(`hs_lastmodifieddate`), sometimes as epoch milliseconds; date properties as `YYYY-MM-DD` or midnight UTC.
Values are written the same way (https://developers.hubspot.com/docs/api/crm/properties#date-and-datetime).
Every conversion is `connectors.codecs`' (shared with Salesforce, so both CRMs give the same Deal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TypeVar

from connectors.codecs import epoch_millis, join_list, parse_date, parse_number, split_list
from connectors.codecs import format_millis as format_datetime
from connectors.codecs import parse_datetime as parse_datetime
from connectors.fieldtable import Codec, FieldTable, build_table, decode_field, read_deal, write_status
from connectors.model import StatusWrite
from rules.model import Deal

__all__ = [
    "CODECS",
    "deal_table",
    "due_timestamp",
    "epoch_millis",
    "format_datetime",
    "missing_properties",
    "parse_datetime",
    "status_properties",
    "to_deal",
]
"""`epoch_millis`, `format_datetime` and `parse_datetime` are the codecs', re-exported for older callers."""

T = TypeVar("T")


def _lenient(decode: Callable[[str | None], T | None], raw: str | None) -> T | None:
    """A HubSpot date or datetime property, None when it holds no value of the form (a property mapped to a
    text field can hold anything): such a deal reads as unchecked or undated, as on Salesforce."""
    try:
        return decode(raw)
    except ValueError:
        return None


MAX_INT_DIGITS = 18
"""The most digits an integer property of ours (the score) is read with. `int(Decimal("1e999999999"))`
would build a billion-digit integer: a value typed into the CRM must not stall the run."""


def _int(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    try:
        number = Decimal(raw.strip())
    except (InvalidOperation, ValueError):
        return None
    if number.is_finite() and number.adjusted() >= MAX_INT_DIGITS:
        raise OverflowError(f"{number:.3e} is out of range (more than {MAX_INT_DIGITS} digits)")
    return int(number)


def missing_properties(props: Mapping[str, object], requested: Iterable[str]) -> tuple[str, ...]:
    """The requested property names absent from one record's `properties`, in request order. HubSpot leaves
    out only a property that does not exist (or is not readable); one without a value comes back as null."""
    return tuple(name for name in requested if name not in props)


def _date_text(value: date | None) -> str:
    return value.isoformat() if value else ""


_PRIORITY = {"high": "HIGH", "normal": "MEDIUM", "medium": "MEDIUM", "low": "LOW"}
"""bant-sync's priorities (Salesforce's words) -> HubSpot's `hs_task_priority` values."""


def due_timestamp(due: date) -> str:
    """Noon UTC on the due date, so the date reads the same in every timezone of the Americas and Europe."""
    return format_datetime(datetime.combine(due, time(12, 0), tzinfo=UTC))


def _due_date(raw: str | None) -> date | None:
    moment = _lenient(parse_datetime, raw)
    return moment.date() if moment is not None else None


CODECS: dict[str, Codec] = {
    "text": Codec(decode=lambda raw: raw, encode=lambda value: value),
    "id": Codec(decode=lambda raw: raw or None, encode=lambda value: value),
    "number": Codec(decode=parse_number, encode=str),
    "date": Codec(decode=lambda raw: _lenient(parse_date, raw), encode=_date_text),
    "datetime": Codec(decode=lambda raw: _lenient(parse_datetime, raw), encode=format_datetime),
    "list": Codec(decode=split_list, encode=join_list),
    "int": Codec(decode=_int, encode=str),
    "raw": Codec(decode=lambda raw: raw, encode=lambda value: value),
    "priority": Codec(
        decode=lambda raw: raw or None, encode=lambda value: _PRIORITY.get(value.lower(), "HIGH")
    ),
    "due": Codec(decode=_due_date, encode=due_timestamp),
}
"""HubSpot's codec per kind of canonical field (`fieldtable.KINDS`, `fieldtable.TASK_KINDS`): property
strings in and out."""


def deal_table(mapping: Mapping[str, str]) -> FieldTable:
    """HubSpot's field table for a connection's canonical -> property mapping (built once per mapping)."""
    return _table(tuple(mapping.items()))


@lru_cache(maxsize=32)
def _table(items: tuple[tuple[str, str], ...]) -> FieldTable:
    return build_table(dict(items), CODECS)


def to_deal(deal_id: str, props: Mapping[str, str | None], table: FieldTable) -> Deal:
    """Translate one HubSpot deal (its id and property strings) into the canonical Deal; UnreadableValue
    names a property whose value cannot be decoded."""
    modified = table.get("modified_at")
    moment = None if modified is None else decode_field(modified, props.get)
    return read_deal(props.get, table, deal_id, moment)


def status_properties(write: StatusWrite, table: FieldTable) -> dict[str, str]:
    """The property strings one StatusWrite sets; an empty string clears a HubSpot property."""
    return write_status(write, table)
