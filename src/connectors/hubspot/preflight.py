"""Before anything is written: the token works, the scopes are granted, every mapped property exists with
the type we expect, and the task->deal association type id is known.

Each problem is named (property, scope) in one error, so an admin fixes everything in one pass. A vanished
BANT property is SchemaDriftError: the run stops and no deal is flagged because of it (docs/design.md §6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import ConfigurationError, SchemaDriftError
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.settings import INPUT_KEYS, OUTPUT_KEYS, HubSpotSettings
from rules.model import Status

OUTPUT_TYPES: dict[str, tuple[str, ...]] = {
    "status": ("enumeration", "string"),
    "missing": ("string", "enumeration"),
    "score": ("number",),
    "checked_at": ("datetime",),
    "flagged_since": ("date", "datetime"),
    "reasons": ("string",),
}
"""Accepted HubSpot `type`s of each output property (the first is what `setup` creates)."""

INPUT_TYPES: dict[str, tuple[str, ...]] = {
    "snooze_until": ("date", "datetime"),
    "snooze_reason": ("string",),
}
"""Accepted `type`s of the input properties whose type matters (the first is what `setup` creates); the
BANT inputs take any type (a criterion judges text, numbers and dates)."""


@dataclass(frozen=True, slots=True)
class PropertyInfo:
    name: str
    type: str
    read_only: bool
    unique: bool
    options: tuple[str, ...] = ()
    """The option values of an enumeration property."""


def read_properties(client: HubSpotClient, object_type: str) -> dict[str, PropertyInfo]:
    response = client.call("other", "properties", "get_all", object_type, archived="false", expect="results")
    found: dict[str, PropertyInfo] = {}
    for prop in getattr(response, "results", None) or []:
        meta = getattr(prop, "modification_metadata", None)
        found[prop.name] = PropertyInfo(
            name=prop.name,
            type=str(prop.type),
            read_only=bool(getattr(meta, "read_only_value", False)),
            unique=bool(getattr(prop, "has_unique_value", False)),
            options=tuple(str(o.value) for o in getattr(prop, "options", None) or []),
        )
    return found


def schema_problems(
    settings: HubSpotSettings,
    deal_props: Mapping[str, PropertyInfo],
    task_props: Mapping[str, PropertyInfo],
) -> tuple[list[str], list[str]]:
    """(missing or unusable property names, human sentences) for the whole mapping."""
    names: list[str] = []
    sentences: list[str] = []
    mapping = settings.props
    for key, name in mapping.items():
        info = deal_props.get(name)
        if info is None:
            names.append(name)
            role = "BANT input" if key in INPUT_KEYS else "output" if key in OUTPUT_KEYS else "deal"
            sentences.append(f"deal property {name!r} ({role} {key}) does not exist")
            continue
        if key in INPUT_TYPES and info.type not in INPUT_TYPES[key]:
            names.append(name)
            sentences.append(
                f"deal property {name!r} ({key}) is of type {info.type}, "
                f"expected {' or '.join(INPUT_TYPES[key])}"
            )
        if key in OUTPUT_TYPES:
            if info.type not in OUTPUT_TYPES[key]:
                names.append(name)
                sentences.append(
                    f"deal property {name!r} is of type {info.type}, "
                    f"expected {' or '.join(OUTPUT_TYPES[key])}"
                )
            elif info.read_only:
                names.append(name)
                sentences.append(f"deal property {name!r} is read-only; bant-sync writes it")
            elif key == "status" and info.type == "enumeration":
                absent = [s.value for s in Status if s.value not in info.options]
                if absent:
                    names.append(name)
                    sentences.append(
                        f"deal property {name!r} lacks the options {', '.join(absent)}: "
                        "`bant-sync setup` adds them"
                    )
    key_prop = task_props.get(settings.task_key_property)
    if key_prop is None:
        names.append(settings.task_key_property)
        sentences.append(f"task property {settings.task_key_property!r} does not exist")
    elif key_prop.type != "string":
        names.append(settings.task_key_property)
        sentences.append(f"task property {settings.task_key_property!r} must be a string property")
    return names, sentences


def task_association_type(client: HubSpotClient) -> int:
    """The HUBSPOT_DEFINED, unlabelled task->deal association type (216 today; read, not trusted)."""
    response = client.call("other", "association_labels", "get_all", "tasks", "deals", expect="results")
    specs: list[Any] = list(getattr(response, "results", None) or [])
    for spec in specs:
        if spec.category == "HUBSPOT_DEFINED" and not spec.label:
            return int(spec.type_id)
    for spec in specs:
        if spec.category == "HUBSPOT_DEFINED":
            return int(spec.type_id)
    raise ConfigurationError(
        "HubSpot lists no HUBSPOT_DEFINED task->deal association type; check the app's "
        "crm.schemas.deals.read scope and that the account has tasks enabled"
    )


def preflight(client: HubSpotClient, settings: HubSpotSettings) -> int:
    """Run every check; raise one error naming every problem. Returns the task->deal association type."""
    access_problems: list[str] = []
    results: dict[str, Any] = {}
    probes: dict[str, Callable[[], object]] = {
        "deal properties": lambda: read_properties(client, "deals"),
        "task properties": lambda: read_properties(client, "tasks"),
        "association types": lambda: task_association_type(client),
    }
    for label, probe in probes.items():
        try:
            results[label] = probe()
        except SchemaDriftError:
            raise
        except ConfigurationError as exc:
            access_problems.append(f"{label}: {exc}")
    if access_problems:
        raise ConfigurationError("HubSpot preflight failed: " + "; ".join(access_problems))
    names, sentences = schema_problems(settings, results["deal properties"], results["task properties"])
    if names:
        raise SchemaDriftError(
            "HubSpot properties are missing or unusable: "
            + "; ".join(sentences)
            + ". Run `bant-sync setup` for bant-sync's own properties, or fix the property mapping.",
            fields=tuple(names),
        )
    association_type: int = results["association types"]
    return association_type
