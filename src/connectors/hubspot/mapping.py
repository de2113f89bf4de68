"""HubSpot deal properties <-> the canonical Deal, and our output values -> HubSpot property strings.

HubSpot returns every property value as a string (or null). Datetimes come as ISO 8601 with millis and `Z`
(`hs_lastmodifieddate`), sometimes as epoch milliseconds; date properties as `YYYY-MM-DD` or midnight UTC.
Values are written the same way (https://developers.hubspot.com/docs/api/crm/properties#date-and-datetime).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from connectors.hubspot.settings import INPUT_KEYS, OUTPUT_KEYS, STANDARD_KEYS
from connectors.model import StatusWrite
from rules.model import Deal, DealFlags, Value

_KNOWN = frozenset((*INPUT_KEYS, *OUTPUT_KEYS, *STANDARD_KEYS))


def parse_datetime(raw: str | None) -> datetime | None:
    """ISO 8601 (with `Z` or offset) or epoch milliseconds -> tz-aware UTC; None for blank or garbage."""
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_date(raw: str | None) -> date | None:
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    moment = parse_datetime(text)
    return moment.date() if moment is not None else None


def format_datetime(moment: datetime) -> str:
    """UTC ISO 8601 with millis and Z, as HubSpot itself writes `hs_lastmodifieddate`."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: bant-sync only handles tz-aware datetimes")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def epoch_millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _number(raw: str | None) -> Value:
    if raw is None or not raw.strip():
        return raw
    try:
        return Decimal(raw.strip())
    except InvalidOperation:
        return raw


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

    missing_raw = get("missing")
    flags = DealFlags(
        status=get("status") or None,
        missing=tuple(m for m in missing_raw.split(";") if m) if missing_raw is not None else None,
        score=_int(get("score")),
        checked_at=parse_datetime(get("checked_at")),
    )
    extra = {key: props.get(name) for key, name in mapping.items() if key not in _KNOWN}
    return Deal(
        id=deal_id,
        name=get("name"),
        owner_id=get("owner_id") or None,
        stage=get("stage"),
        pipeline=get("pipeline"),
        deal_type=get("deal_type"),
        amount=_number(get("amount")),
        close_date=parse_date(get("close_date")),
        budget=get("budget"),
        authority=get("authority"),
        need=get("need"),
        timing=get("timing"),
        modified_at=parse_datetime(get("modified_at")),
        flagged_since=parse_date(get("flagged_since")),
        flags=flags,
        extra=extra,
    )


def status_properties(write: StatusWrite, mapping: Mapping[str, str]) -> dict[str, str]:
    """The property strings one StatusWrite sets; an empty string clears a HubSpot property."""
    return {
        mapping["status"]: write.status.value,
        mapping["missing"]: ";".join(write.missing),
        mapping["score"]: str(write.score),
        mapping["checked_at"]: format_datetime(write.checked_at),
        mapping["flagged_since"]: write.flagged_since.isoformat() if write.flagged_since else "",
    }
