"""Converting field values between Salesforce JSON and the Python values the store and SOQL engine hold."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from typing import TypeVar

from sandbox.salesforce.errors import SfError
from sandbox.salesforce.schema import FieldDef

_D = TypeVar("_D", bound=date)

_TEXT = {"string", "textarea", "picklist", "combobox", "email", "phone", "url", "id", "reference"}
_NUMBER = {"double", "currency", "percent"}
_SHARED_UP_TO = 24
"""Written texts up to this length are interned: a run writes the same few statuses, missing lists and
owner ids to most of 100,000 records."""
_MOMENTS_KEPT = 4096
_moments: dict[date, date] = {}
"""Recently written dates and datetimes by value: a run stamps most records with one check time, so equal
values share one object instead of 48 bytes a record."""


def _shared(value: _D) -> _D:
    found = _moments.get(value)
    if found is not None and type(found) is type(value):
        return found
    if len(_moments) >= _MOMENTS_KEPT:
        _moments.clear()
    _moments[value] = value
    return value


def format_datetime(value: datetime) -> str:
    """Salesforce's JSON datetime: ``2026-11-27T20:54:14.000+0000``."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def to_json(value: object) -> object:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def parse_datetime(text: str) -> datetime:
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    elif len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def _bad(spec: FieldDef, value: object) -> SfError:
    kind = {"date": "date", "datetime": "datetime", "boolean": "boolean", "int": "int"}.get(
        spec.type, "double"
    )
    return SfError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {kind} from VALUE_STRING value {value} or request may be missing a "
        f"required field at [line:1, column:1]",
        [spec.name],
    )


def from_json(spec: FieldDef, value: object) -> object:
    """Coerce a JSON value for ``spec`` the way the REST API does, or raise SfError."""
    if value is None:
        return None
    kind = spec.type
    if kind == "anyType":
        return value
    if kind in _TEXT:
        if isinstance(value, bool | dict | list):
            raise _bad(spec, value)
        text = str(value)
        return (sys.intern(text) if len(text) <= _SHARED_UP_TO else text) or None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise _bad(spec, value)
    if kind == "datetime" and isinstance(value, datetime) and value.tzinfo is not None:
        return _shared(value.astimezone(UTC).replace(microsecond=value.microsecond // 1000 * 1000))
    if kind == "date" and isinstance(value, date) and not isinstance(value, datetime):
        return _shared(value)
    try:
        if kind in _NUMBER:
            if isinstance(value, bool):
                raise _bad(spec, value)
            return float(value)  # type: ignore[arg-type]
        if kind == "int":
            return int(value)  # type: ignore[call-overload]
        if kind == "date" and isinstance(value, str):
            return _shared(date.fromisoformat(value.strip()[:10]))
        if kind == "datetime" and isinstance(value, str):
            return _shared(parse_datetime(value))
    except (TypeError, ValueError) as exc:
        raise _bad(spec, value) from exc
    raise _bad(spec, value)


def check_constraints(spec: FieldDef, value: object) -> None:
    """Row-level checks the API makes after deserialising: restricted picklists and lengths."""
    if not isinstance(value, str):
        return
    if spec.picklist and value not in spec.picklist:
        raise SfError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{spec.label}: bad value for restricted picklist field: {value}",
            [spec.name],
        )
    if spec.length and len(value) > spec.length:
        raise SfError(
            "STRING_TOO_LONG",
            f"{spec.label}: data value too large: {value[:40]}... (max length={spec.length})",
            [spec.name],
        )
