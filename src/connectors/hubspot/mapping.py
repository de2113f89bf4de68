"""HubSpot deal properties <-> the canonical Deal, and our output values -> HubSpot property strings.

HubSpot returns every property value as a string (or null). Datetimes come as ISO 8601 with millis and `Z`
(`hs_lastmodifieddate`), sometimes as epoch milliseconds; date properties as `YYYY-MM-DD` or midnight UTC.
Values are written the same way (https://developers.hubspot.com/docs/api/crm/properties#date-and-datetime).
Every conversion is `connectors.codecs`' (shared with Salesforce, so both CRMs give the same Deal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from connectors.codecs import epoch_millis, join_list, parse_date, parse_number, split_list
from connectors.codecs import format_millis as format_datetime
from connectors.codecs import parse_datetime as parse_datetime
from connectors.hubspot.settings import INPUT_KEYS, OUTPUT_KEYS, STANDARD_KEYS
from connectors.model import StatusWrite
from rules.model import Deal, DealFlags

__all__ = [
    "epoch_millis",
    "format_datetime",
    "missing_properties",
    "parse_datetime",
    "status_properties",
    "to_deal",
]
"""`epoch_millis`, `format_datetime` and `parse_datetime` are the codecs', re-exported for older callers."""

T = TypeVar("T")
_KNOWN = frozenset((*INPUT_KEYS, *OUTPUT_KEYS, *STANDARD_KEYS))


def _lenient(decode: Callable[[str | None], T | None], raw: str | None) -> T | None:
    """A HubSpot date or datetime property, None when it holds no value of the form (a property mapped to a
    text field can hold anything): such a deal reads as unchecked or undated, as on Salesforce."""
    try:
        return decode(raw)
    except ValueError:
        return None


def _int(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    try:
        return int(Decimal(raw.strip()))
    except (InvalidOperation, ValueError):
        return None


def missing_properties(props: Mapping[str, object], requested: Iterable[str]) -> tuple[str, ...]:
    """The requested property names absent from one record's `properties`, in request order. HubSpot leaves
    out only a property that does not exist (or is not readable); one without a value comes back as null."""
    return tuple(name for name in requested if name not in props)


def to_deal(deal_id: str, props: Mapping[str, str | None], mapping: Mapping[str, str]) -> Deal:
    """Translate one HubSpot deal (its id and property strings) into the canonical Deal."""

    def get(key: str) -> str | None:
        return props.get(mapping[key])

    flags = DealFlags(
        status=get("status") or None,
        missing=split_list(get("missing")),
        score=_int(get("score")),
        checked_at=_lenient(parse_datetime, get("checked_at")),
    )
    extra = {key: props.get(name) for key, name in mapping.items() if key not in _KNOWN}
    return Deal(
        id=deal_id,
        name=get("name"),
        owner_id=get("owner_id") or None,
        stage=get("stage"),
        pipeline=get("pipeline"),
        deal_type=get("deal_type"),
        amount=parse_number(get("amount")),
        close_date=_lenient(parse_date, get("close_date")),
        budget=get("budget"),
        authority=get("authority"),
        need=get("need"),
        timing=get("timing"),
        modified_at=_lenient(parse_datetime, get("modified_at")),
        flagged_since=_lenient(parse_date, get("flagged_since")),
        flags=flags,
        extra=extra,
    )


def status_properties(write: StatusWrite, mapping: Mapping[str, str]) -> dict[str, str]:
    """The property strings one StatusWrite sets; an empty string clears a HubSpot property."""
    return {
        mapping["status"]: write.status.value,
        mapping["missing"]: join_list(write.missing),
        mapping["score"]: str(write.score),
        mapping["checked_at"]: format_datetime(write.checked_at),
        mapping["flagged_since"]: write.flagged_since.isoformat() if write.flagged_since else "",
    }
