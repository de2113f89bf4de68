"""`bant-sync setup` for HubSpot: create the property group and bant-sync's output properties, check the
BANT input ones. Idempotent: a second run finds everything and changes nothing.

Property and group creation: https://developers.hubspot.com/docs/api/crm/properties. The task key is a
unique-value string property so a task can be read by it (`idProperty`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.preflight import OUTPUT_TYPES, read_properties
from connectors.hubspot.settings import INPUT_KEYS, OUTPUT_KEYS, HubSpotSettings
from rules.model import Status

_FIELD_TYPES = {
    "enumeration": "select",
    "string": "text",
    "number": "number",
    "datetime": "date",
    "date": "date",
}
_LABELS = {
    "status": "BANT status",
    "missing": "BANT missing",
    "score": "BANT score",
    "checked_at": "BANT checked at",
    "flagged_since": "BANT unqualified since",
}


@dataclass(frozen=True, slots=True)
class SetupReport:
    """What setup did: `created` and `existing` name groups/properties; `problems` need a person."""

    created: tuple[str, ...]
    existing: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _ensure_group(client: HubSpotClient, settings: HubSpotSettings, object_type: str) -> bool:
    """True when the group had to be created."""
    response = client.call("other", "groups", "get_all", object_type)
    if any(g.name == settings.property_group for g in getattr(response, "results", None) or []):
        return False
    body = {"name": settings.property_group, "label": settings.property_group_label, "displayOrder": -1}
    with client.single_attempt():
        client.call("other", "groups", "create", object_type, body)
    return True


def _output_definition(key: str, name: str, settings: HubSpotSettings) -> dict[str, Any]:
    prop_type = OUTPUT_TYPES[key][0]
    body: dict[str, Any] = {
        "name": name,
        "label": _LABELS[key],
        "type": prop_type,
        "fieldType": _FIELD_TYPES[prop_type],
        "groupName": settings.property_group,
        "description": "Written by bant-sync; edits are overwritten on the next run.",
    }
    if key == "status":
        body["options"] = [
            {
                "label": s.value.replace("_", " ").capitalize(),
                "value": s.value,
                "displayOrder": i,
                "hidden": False,
            }
            for i, s in enumerate(Status)
        ]
    return body


def setup(client: HubSpotClient, settings: HubSpotSettings) -> SetupReport:
    created: list[str] = []
    existing: list[str] = []
    problems: list[str] = []
    for object_type in ("deals", "tasks"):
        label = f"{object_type} group {settings.property_group}"
        (created if _ensure_group(client, settings, object_type) else existing).append(label)
    deal_props = read_properties(client, "deals")
    for key in OUTPUT_KEYS:
        name = settings.prop(key)
        info = deal_props.get(name)
        if info is None:
            body = _output_definition(key, name, settings)
            with client.single_attempt():
                client.call("other", "properties", "create", "deals", body)
            created.append(f"deals.{name}")
        elif info.type not in OUTPUT_TYPES[key]:
            problems.append(
                f"deal property {name!r} exists with type {info.type}; expected {OUTPUT_TYPES[key][0]}: "
                f"delete it or map `{key}` to another property"
            )
        else:
            existing.append(f"deals.{name}")
    for key in INPUT_KEYS:
        name = settings.prop(key)
        if name in deal_props:
            existing.append(f"deals.{name}")
        else:
            problems.append(
                f"BANT input property {name!r} ({key}) does not exist on deals: create it in HubSpot "
                f"(Settings > Properties) or map `{key}` to an existing property"
            )
    task_props = read_properties(client, "tasks")
    key_name = settings.task_key_property
    if key_name not in task_props:
        body = {
            "name": key_name,
            "label": "bant-sync key",
            "type": "string",
            "fieldType": "text",
            "groupName": settings.property_group,
            "hasUniqueValue": True,
            "description": "Identifies the bant-sync follow-up task of a deal; do not edit.",
        }
        with client.single_attempt():
            client.call("other", "properties", "create", "tasks", body)
        created.append(f"tasks.{key_name}")
    else:
        existing.append(f"tasks.{key_name}")
    return SetupReport(tuple(created), tuple(existing), tuple(problems))
