"""``/crm/v3/properties/{type}`` (list, create), ``/{name}`` (get, update, archive) and ``/groups``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from sandbox.clock import SandboxClock
from sandbox.http import Request, Response, empty_response, json_response
from sandbox.hubspot.errors import HsError
from sandbox.hubspot.properties import FIELD_TYPES, PropertyDef, PropertyGroup, iso_millis
from sandbox.hubspot.state import HubSpotState

TYPES = ("string", "number", "date", "datetime", "enumeration", "bool")
FIELD_TYPE_VALUES = (
    "textarea",
    "text",
    "date",
    "file",
    "number",
    "select",
    "radio",
    "checkbox",
    "booleancheckbox",
)


def _options(raw: object) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(o, Mapping) and "value" in o for o in raw):
        raise HsError("VALIDATION_ERROR", "options must be a list of {label, value}")
    return tuple((str(o["value"]), str(o.get("label", o["value"]))) for o in raw)


def _body(request: Request) -> Mapping[str, object]:
    body = request.json()
    if not isinstance(body, Mapping):
        raise HsError("VALIDATION_ERROR", "Invalid input JSON: expected an object")
    return body


class PropertiesService:
    def __init__(self, state: HubSpotState, clock: SandboxClock) -> None:
        self._state = state
        self._clock = clock

    def handle(self, request: Request, parts: list[str]) -> Response:
        """``parts`` follows ``/crm/v3/properties/``: [type], [type, name], [type, "groups", ...]."""
        state = self._state
        with state.lock:
            store = state.store(parts[0])
            registry = store.registry
            if len(parts) >= 2 and parts[1] == "groups":
                return self._groups(request, store.type, parts[2:])
            if len(parts) == 1:
                if request.method == "GET":
                    return json_response(200, {"results": [p.render() for p in registry.properties.values()]})
                if request.method == "POST":
                    return json_response(201, self._create(store.type, _body(request)).render())
                raise HsError("VALIDATION_ERROR", f"{request.method} is not supported here", status=405)
            name = parts[1]
            prop = registry.properties.get(name)
            if prop is None:
                raise HsError(
                    "OBJECT_NOT_FOUND", f"Unable to find property {name} on object type {store.type}"
                )
            if request.method == "GET":
                return json_response(200, prop.render())
            if request.method == "PATCH":
                return json_response(200, self._update(store.type, prop, _body(request)).render())
            if request.method == "DELETE":
                if prop.hubspot_defined:
                    raise HsError(
                        "VALIDATION_ERROR", f"{name} is a HubSpot-defined property and cannot be archived"
                    )
                state.delete_property(store.type, name)
                return empty_response(204)
            raise HsError("VALIDATION_ERROR", f"{request.method} is not supported here", status=405)

    def _create(self, object_type: str, body: Mapping[str, object]) -> PropertyDef:
        registry = self._state.stores[object_type].registry
        missing = [key for key in ("name", "label", "type", "fieldType", "groupName") if not body.get(key)]
        if missing:
            raise HsError("VALIDATION_ERROR", f"Property definition is missing: {', '.join(missing)}")
        name, kind, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if name in registry.properties:
            raise HsError("OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        if kind not in TYPES or field_type not in FIELD_TYPE_VALUES:
            raise HsError("VALIDATION_ERROR", f"Invalid type/fieldType {kind}/{field_type}")
        group = str(body["groupName"])
        if group not in registry.groups:
            raise HsError("VALIDATION_ERROR", f"Property group {group} does not exist.")
        now = iso_millis(self._clock.now())
        prop = PropertyDef(
            name=name,
            label=str(body["label"]),
            type=kind,
            field_type=field_type,
            group_name=group,
            description=str(body.get("description") or ""),
            options=_options(body.get("options")),
            has_unique_value=bool(body.get("hasUniqueValue", False)),
            display_order=int(body.get("displayOrder", -1)),  # type: ignore[call-overload]
            created_at=now,
            updated_at=now,
        )
        registry.add(prop)
        self._state.stores[object_type].reindex()
        return prop

    def _update(self, object_type: str, prop: PropertyDef, body: Mapping[str, object]) -> PropertyDef:
        changes: dict[str, object] = {"updated_at": iso_millis(self._clock.now())}
        for key, attr in (("label", "label"), ("description", "description"), ("groupName", "group_name")):
            if key in body:
                changes[attr] = str(body[key])
        if "type" in body:
            changes["type"] = str(body["type"])
            changes.setdefault("field_type", FIELD_TYPES.get(str(body["type"]), "select"))
        if "fieldType" in body:
            changes["field_type"] = str(body["fieldType"])
        if "options" in body:
            changes["options"] = _options(body["options"])
        updated = dataclasses.replace(prop, **changes)  # type: ignore[arg-type]
        self._state.stores[object_type].registry.add(updated)
        return updated

    def _groups(self, request: Request, object_type: str, rest: list[str]) -> Response:
        groups = self._state.stores[object_type].registry.groups
        if not rest and request.method == "GET":
            return json_response(200, {"results": [g.render() for g in groups.values()]})
        if not rest and request.method == "POST":
            body = _body(request)
            name, label = body.get("name"), body.get("label")
            if not name or not label:
                raise HsError("VALIDATION_ERROR", "A property group needs a name and a label")
            if str(name) in groups:
                raise HsError("OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists.")
            group = PropertyGroup(str(name), str(label), int(body.get("displayOrder", -1)))  # type: ignore[call-overload]
            groups[group.name] = group
            return json_response(201, group.render())
        if len(rest) == 1 and request.method == "GET":
            found = groups.get(rest[0])
            if found is None:
                raise HsError(
                    "OBJECT_NOT_FOUND", f"Unable to find group {rest[0]} on object type {object_type}"
                )
            return json_response(200, found.render())
        raise HsError("VALIDATION_ERROR", f"{request.method} is not supported here", status=405)
