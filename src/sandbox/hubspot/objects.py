"""Basic object endpoints (``/crm/v3/objects/{type}`` list/create, ``/{id}`` get/update/archive) and the
helpers batch and search share: rendering a record and attaching associations on create."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sandbox.faultbook import Firing
from sandbox.http import Request, Response, empty_response, json_response
from sandbox.hubspot.associations import type_name
from sandbox.hubspot.errors import HsError, not_found
from sandbox.hubspot.history import render_history
from sandbox.hubspot.paging import next_paging
from sandbox.hubspot.search import render_row
from sandbox.hubspot.state import ALIASES, HubSpotState
from sandbox.hubspot.store import HsObject, ObjectStore

MAX_PAGE = 100
MAX_PAGE_WITH_HISTORY = 50
"""A list page asking for `propertiesWithHistory` holds at most 50 records: "Usage of this parameter will
reduce the maximum number of objects that can be read by a single request" (CRM objects API spec, the
list endpoint's `propertiesWithHistory`); HubSpot caps it at 50, as it caps a batch read with history."""


def render(
    state: HubSpotState,
    store: ObjectStore,
    obj: HsObject,
    wanted: list[str],
    assoc: Sequence[str],
    with_history: list[str] | None = None,
) -> dict[str, object]:
    """One record as the read endpoints answer it; `with_history` adds `propertiesWithHistory` (search
    never does: it does not offer history)."""
    out = render_row(store, (obj, obj.properties, obj.modstamp_ms), wanted)
    if with_history:
        out["propertiesWithHistory"] = render_history(obj, with_history, store.registry.properties)
    links: dict[str, object] = {}
    for other in assoc:
        target = ALIASES.get(other)
        if target is None:
            continue
        found = state.associations.targets(store.type, obj.id, target)
        if found:
            links[other] = {
                "results": [
                    {"id": target_id, "type": type_name(store.type, target, type_id)}
                    for target_id, types in found
                    for type_id in sorted(types)
                ]
            }
    if links:
        out["associations"] = links
    return out


def parse_associations(state: HubSpotState, store: ObjectStore, raw: object) -> list[tuple[str, str, int]]:
    """Validate create-time associations: [(to_type, to_id, type_id)] or a VALIDATION_ERROR."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise HsError("VALIDATION_ERROR", "associations must be a list")
    links = []
    for item in raw:
        to = item.get("to") if isinstance(item, Mapping) else None
        types = item.get("types") if isinstance(item, Mapping) else None
        if not isinstance(to, Mapping) or not isinstance(types, list) or not types:
            raise HsError(
                "VALIDATION_ERROR", "Each association needs 'to': {'id'} and a non-empty 'types' list"
            )
        to_id = str(to.get("id", ""))
        for spec in types:
            type_id = int(spec.get("associationTypeId", 0)) if isinstance(spec, Mapping) else 0
            target = next(
                (t for t in ("deals", "tasks") if state.associations.valid_type(store.type, t, type_id)), None
            )
            if target is None:
                raise HsError(
                    "VALIDATION_ERROR",
                    f"association type id {type_id} is not valid from {store.type}",
                    sub_category="crm.associations.INVALID_ASSOCIATION_TYPE",
                )
            if to_id not in state.stores[target].objects:
                raise HsError(
                    "VALIDATION_ERROR",
                    f"One or more associations are invalid: {target[:-1]} {to_id} does not exist",
                    context={"ids": [to_id]},
                    sub_category="crm.associations.INVALID_ASSOCIATION_TARGET",
                )
            links.append((target, to_id, type_id))
    return links


def resolve(store: ObjectStore, raw_id: str, id_property: str | None) -> HsObject:
    if id_property and id_property != "hs_object_id":
        prop = store.registry.properties.get(id_property)
        if prop is None or not prop.has_unique_value:
            raise HsError(
                "VALIDATION_ERROR", f"{id_property} is not a unique identifier property of {store.type}"
            )
        found = store.by_unique(id_property, raw_id)
    else:
        found = store.objects.get(raw_id)
    if found is None:
        raise not_found(raw_id)
    return found


def _properties(body: object) -> Mapping[str, object]:
    props = body.get("properties") if isinstance(body, Mapping) else None
    if not isinstance(props, Mapping):
        raise HsError("VALIDATION_ERROR", "Invalid input JSON: 'properties' must be an object")
    return props


def list_objects(state: HubSpotState, store: ObjectStore, request: Request) -> Response:
    try:
        limit = int(request.param("limit") or 10)
        after = int(request.param("after") or 0)
    except ValueError as exc:
        raise HsError("VALIDATION_ERROR", "limit and after must be integers") from exc
    with_history = request.params("propertiesWithHistory")
    limit = max(1, min(MAX_PAGE_WITH_HISTORY if with_history else MAX_PAGE, limit))
    with state.lock:
        ids = store.ids_after(after, limit + 1)
        wanted, assoc = request.params("properties"), request.params("associations")
        results = [render(state, store, store.objects[i], wanted, assoc, with_history) for i in ids[:limit]]
    body: dict[str, object] = {"results": results}
    if len(ids) > limit:
        body["paging"] = next_paging(request, ids[limit - 1])
    return json_response(200, body)


def get_object(state: HubSpotState, store: ObjectStore, object_id: str, request: Request) -> Response:
    with state.lock:
        obj = resolve(store, object_id, request.param("idProperty"))
        body = render(
            state,
            store,
            obj,
            request.params("properties"),
            request.params("associations"),
            request.params("propertiesWithHistory"),
        )
    return json_response(200, body)


def create_object(state: HubSpotState, store: ObjectStore, request: Request) -> Response:
    body = request.json()
    with state.lock:
        props = _properties(body)
        links = parse_associations(
            state, store, body.get("associations") if isinstance(body, Mapping) else None
        )
        obj = state.create(store.type, props)
        for target, to_id, type_id in links:
            state.associations.link(store.type, obj.id, target, to_id, type_id)
        names = [name for name, value in obj.properties.items() if value is not None]
        return json_response(201, render(state, store, obj, names, ()))


def update_object(
    state: HubSpotState, store: ObjectStore, object_id: str, request: Request, firing: Firing
) -> Response:
    body = request.json()
    with state.lock:
        props = _properties(body)
        obj = resolve(store, object_id, request.param("idProperty"))
        if firing.take_lock(obj.id):
            raise locked(obj.id)
        obj = state.update(store.type, obj.id, props)
        return json_response(200, render(state, store, obj, list(props), ()))


def archive_object(state: HubSpotState, store: ObjectStore, object_id: str, firing: Firing) -> Response:
    with state.lock:
        if firing.take_lock(object_id):
            raise locked(object_id)
        if object_id in store.objects:
            state.archive(store.type, object_id)
    return empty_response(204)


def locked(object_id: str) -> HsError:
    return HsError(
        "CONFLICT",
        f"Object {object_id} is being updated by another request; retry later.",
        context={"ids": [object_id]},
        sub_category="LOCKED",
    )
