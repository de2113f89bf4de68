"""HubSpot property definitions, property groups, and normalising property values to stored strings.

Values are strings in the API. Datetime properties are stored as ISO-8601 UTC with milliseconds
(``2026-11-27T20:54:14.123Z``) and accept epoch milliseconds on input; date properties store
``YYYY-MM-DD`` and accept midnight-UTC epoch milliseconds (HubSpot docs, "Properties: date and datetime").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sandbox.hubspot.errors import HsError

DEAL_TYPES = (("newbusiness", "New Business"), ("existingbusiness", "Existing Business"), ("poc", "POC"))
TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
TASK_PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "bool": "booleancheckbox",
}


@dataclass(frozen=True)
class PropertyDef:
    name: str
    label: str
    type: str
    field_type: str = ""
    group_name: str = ""
    description: str = ""
    options: tuple[tuple[str, str], ...] = ()
    has_unique_value: bool = False
    hubspot_defined: bool = False
    read_only: bool = False
    display_order: int = -1
    created_at: str = "2024-01-01T00:00:00.000Z"
    updated_at: str = "2024-01-01T00:00:00.000Z"

    def render(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type or FIELD_TYPES.get(self.type, "select"),
            "description": self.description,
            "groupName": self.group_name,
            "options": [
                {"label": label, "value": value, "displayOrder": order, "hidden": False}
                for order, (value, label) in enumerate(self.options)
            ],
            "displayOrder": self.display_order,
            "calculated": self.read_only and self.hubspot_defined,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "archived": False,
        }


@dataclass
class PropertyGroup:
    name: str
    label: str
    display_order: int = -1

    def render(self) -> dict[str, object]:
        return {"name": self.name, "label": self.label, "displayOrder": self.display_order, "archived": False}


@dataclass
class PropertyRegistry:
    """The properties and groups of one object type."""

    properties: dict[str, PropertyDef] = field(default_factory=dict)
    groups: dict[str, PropertyGroup] = field(default_factory=dict)

    def add(self, *defs: PropertyDef) -> None:
        for prop in defs:
            self.properties[prop.name] = prop


class PropertyValueError(Exception):
    def __init__(self, name: str, error: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.error = error
        self.message = message

    def detail(self) -> dict[str, object]:
        return {
            "isValid": False,
            "message": self.message,
            "error": self.error,
            "name": self.name,
            "localizedErrorMessage": self.message,
        }


def invalid_properties(errors: list[PropertyValueError]) -> HsError:
    details = json.dumps([e.detail() for e in errors], separators=(",", ":"))
    return HsError("VALIDATION_ERROR", f"Property values were not valid: {details}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SHARED_UP_TO = 24
"""Written values up to this length are interned (numbers, keys of the BANT criteria missing, short
texts); a run writes the same few of them to most records. Dates and datetimes always are: a run stamps
every deal with the same check time."""


def epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds (no float rounding)."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso_millis(moment: datetime) -> str:
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_instant(text: str) -> datetime:
    """Epoch milliseconds or ISO-8601 (a bare date is midnight UTC)."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return _EPOCH + timedelta(milliseconds=int(stripped))
    if len(stripped) == 10:
        return datetime.combine(date.fromisoformat(stripped), datetime.min.time(), tzinfo=UTC)
    parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalize(prop: PropertyDef, raw: object) -> str | None:
    """The stored string for a raw input value, or PropertyValueError."""
    if raw is None or raw == "":
        return None
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    try:
        if prop.type == "number":
            number = float(text)
            shown = (
                text if not isinstance(raw, float) else (str(int(number)) if number.is_integer() else text)
            )
            return sys.intern(shown)
        if prop.type == "bool":
            if text.lower() not in {"true", "false"}:
                raise ValueError(text)
            return "true" if text.lower() == "true" else "false"
        if prop.type == "datetime":
            return sys.intern(iso_millis(parse_instant(text)))
        if prop.type == "date":
            moment = parse_instant(text)
            if (moment.hour, moment.minute, moment.second, moment.microsecond) != (0, 0, 0, 0):
                raise PropertyValueError(
                    prop.name,
                    "INVALID_DATE",
                    f"{text} is at {moment.time()} UTC; a date must be midnight UTC",
                )
            return sys.intern(moment.date().isoformat())
    except (ValueError, OverflowError) as exc:
        error = {"number": "INVALID_DECIMAL", "bool": "INVALID_BOOLEAN"}.get(prop.type, "INVALID_DATE")
        raise PropertyValueError(
            prop.name, error, f"{text!r} is not a valid {prop.type} for {prop.name}"
        ) from exc
    if prop.type == "enumeration" and prop.options and text not in {value for value, _ in prop.options}:
        allowed = ", ".join(value for value, _ in prop.options)
        raise PropertyValueError(
            prop.name, "INVALID_OPTION", f"{text} was not one of the allowed options: [{allowed}]"
        )
    if prop.type == "enumeration" or len(text) <= _SHARED_UP_TO:
        # One string per option or short value, not one per record written: 57,000 tasks each carry a
        # status, a priority, a type and an owner id; 100,000 deals a BANT status, score and missing list.
        return sys.intern(text)
    return text


def option_list(values: Mapping[str, str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if isinstance(values, tuple):
        return tuple((value, value.replace("_", " ").title()) for value in values)
    return tuple(values.items())
