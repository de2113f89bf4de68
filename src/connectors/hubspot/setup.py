"""`bant-sync setup` for HubSpot: create the property group and bant-sync's output properties, check the
BANT input ones (and create them, with their types, when asked: `--create-inputs`), create the snooze
properties reps fill in (bant-sync's own, like the outputs), and add status options a newer bant-sync
writes (`snoozed`) to an existing status property. Idempotent: a second run finds everything and changes
nothing.

Property and group creation: https://developers.hubspot.com/docs/api/crm/properties. The task key is a
unique-value string property so a task can be read by it (`idProperty`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.preflight import INPUT_TYPES, OUTPUT_TYPES, read_properties
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
    "reasons": "BANT reasons",
    "budget": "BANT budget",
    "authority": "BANT authority",
    "need": "BANT need",
    "timing": "BANT timing",
    "snooze_until": "BANT snooze until",
    "snooze_reason": "BANT snooze reason",
}
_INPUT_HELP = {
    "budget": "The budget set aside for this deal, roughly how much, and who approves it.",
    "authority": "Who signs off on this purchase.",
    "need": "The problem this deal solves, in the customer's words.",
    "timing": "The decision date, or what drives it (a date like 2027-03-31 is read as one).",
    "snooze_until": "Acknowledge the BANT flag until this date (at most 30 days by default); needs a reason.",
    "snooze_reason": "Why the flag can wait (at least 10 characters by default), e.g. the budget cycle.",
}
_TEXTAREA = frozenset({"need", "reasons"})


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


def _status_options() -> list[dict[str, Any]]:
    return [
        {
            "label": "POC unqualified"
            if s is Status.POC_UNQUALIFIED
            else s.value.replace("_", " ").capitalize(),
            "value": s.value,
            "displayOrder": i,
            "hidden": False,
        }
        for i, s in enumerate(Status)
    ]


def _definition(key: str, name: str, settings: HubSpotSettings) -> dict[str, Any]:
    """The property bant-sync creates for `key`: an output (written by bant-sync) or an input."""
    output = key in OUTPUT_TYPES
    prop_type = OUTPUT_TYPES[key][0] if output else INPUT_TYPES.get(key, ("string",))[0]
    field_type = "textarea" if key in _TEXTAREA else _FIELD_TYPES[prop_type]
    body: dict[str, Any] = {
        "name": name,
        "label": _LABELS[key],
        "type": prop_type,
        "fieldType": field_type,
        "groupName": settings.property_group,
        "description": "Written by bant-sync; edits are overwritten on the next run."
        if output
        else _INPUT_HELP[key],
    }
    if key == "status":
        body["options"] = _status_options()
    return body


def _add_status_options(client: HubSpotClient, name: str, present: tuple[str, ...]) -> list[str]:
    """Add the statuses an existing status property lacks (keeping its own options and labels); the
    values added."""
    absent = [s.value for s in Status if s.value not in present]
    if not absent:
        return []
    response = client.call("other", "properties", "get_by_name", "deals", name)
    kept = [
        {
            "label": o.label,
            "value": o.value,
            "displayOrder": o.display_order,
            "hidden": bool(o.hidden),
        }
        for o in getattr(response, "options", None) or []
    ]
    added = [o for o in _status_options() if o["value"] in absent]
    with client.single_attempt():
        client.call("other", "properties", "update", "deals", name, {"options": kept + added})
    return absent


def setup(client: HubSpotClient, settings: HubSpotSettings, create_inputs: bool = False) -> SetupReport:
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
            body = _definition(key, name, settings)
            with client.single_attempt():
                client.call("other", "properties", "create", "deals", body)
            created.append(f"deals.{name}")
        elif info.type not in OUTPUT_TYPES[key]:
            problems.append(
                f"deal property {name!r} exists with type {info.type}; expected {OUTPUT_TYPES[key][0]}: "
                f"delete it or map `{key}` to another property"
            )
        else:
            added = _add_status_options(client, name, info.options) if key == "status" else []
            if added:
                created.append(f"deals.{name} options {', '.join(added)}")
            else:
                existing.append(f"deals.{name}")
    for key in INPUT_KEYS:
        name = settings.prop(key)
        info = deal_props.get(name)
        if info is not None and key in INPUT_TYPES and info.type not in INPUT_TYPES[key]:
            problems.append(
                f"deal property {name!r} ({key}) exists with type {info.type}; expected "
                f"{' or '.join(INPUT_TYPES[key])}: delete it or map `{key}` to another property"
            )
        elif info is not None:
            existing.append(f"deals.{name}")
        elif create_inputs or key in INPUT_TYPES:
            with client.single_attempt():
                client.call("other", "properties", "create", "deals", _definition(key, name, settings))
            created.append(f"deals.{name}")
        else:
            problems.append(
                f"input property {name!r} ({key}) does not exist on deals: run `bant-sync setup "
                f"--create-inputs` to create it, or map `{key}` to an existing property"
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
