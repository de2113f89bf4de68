"""Batch endpoints: ``/crm/v3/objects/{type}/batch/{read,create,update,upsert,archive}``.

At most 100 inputs (400 beyond). Property names and value formats are checked for every input first: one
bad one fails the whole batch with 400 VALIDATION_ERROR. Past that, rows fail independently (missing ids,
conflicts, bad associations, injected faults) and the answer is HTTP 207 with ``errors`` beside the
successful ``results`` and ``numErrors`` (HubSpot docs, "CRM API batch endpoints").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from sandbox.clock import SandboxClock
from sandbox.faultbook import Firing
from sandbox.faults import FaultRule
from sandbox.http import Request, Response, empty_response, json_response
from sandbox.hubspot.errors import HsError
from sandbox.hubspot.objects import locked, parse_associations, render, resolve
from sandbox.hubspot.properties import iso_millis
from sandbox.hubspot.state import HubSpotState
from sandbox.hubspot.store import HsObject, ObjectStore

MAX_INPUTS = 100
MAX_HISTORY_INPUTS = 50
"""A read asking for `propertiesWithHistory` takes at most 50 inputs; HubSpot answers more with 400 "The
maximum number of inputs supported in a batch request for property histories is 50" (as reported in
PipedreamHQ/pipedream#8462)."""
Row = Mapping[str, object]


def _inputs(body: object) -> list[Row]:
    inputs = body.get("inputs") if isinstance(body, Mapping) else None
    if not isinstance(inputs, list) or not all(isinstance(i, Mapping) for i in inputs):
        raise HsError("VALIDATION_ERROR", 'Invalid input JSON: expected {"inputs": [...]}')
    if len(inputs) > MAX_INPUTS:
        raise HsError(
            "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {MAX_INPUTS}."
        )
    return inputs


def _injected(rule: FaultRule, context: dict[str, list[str]]) -> HsError:
    category = rule.error_code or "VALIDATION_ERROR"
    return HsError(category, rule.message or "sandbox: injected failure for this input", context=context)


class BatchService:
    def __init__(self, state: HubSpotState, clock: SandboxClock) -> None:
        self._state = state
        self._clock = clock

    def handle(self, store: ObjectStore, action: str, request: Request, firing: Firing) -> Response:
        body = request.json()
        inputs = _inputs(body)
        assert isinstance(body, Mapping)
        started = iso_millis(self._clock.now())
        if action == "archive":
            with self._state.lock:
                for row in inputs:
                    object_id = str(row.get("id", ""))
                    if object_id in store.objects:
                        self._state.archive(store.type, object_id)
            return empty_response(204)
        handlers: dict[str, Callable[[ObjectStore, Row, Mapping[str, object], Firing], dict[str, object]]] = {
            "read": self._read,
            "create": self._create,
            "update": self._update,
            "upsert": self._upsert,
        }
        run = handlers.get(action)
        if run is None:
            raise HsError("OBJECT_NOT_FOUND", f"Unknown batch action {action}", status=404)
        if action == "read" and _history(body) and len(inputs) > MAX_HISTORY_INPUTS:
            raise HsError(
                "VALIDATION_ERROR",
                f"The maximum number of inputs supported in a batch request for property histories is "
                f"{MAX_HISTORY_INPUTS}. Please reduce the number of items and try again",
            )
        if action == "upsert":
            keys = Counter(str(row.get("id")) for row in inputs)
            duplicates = sorted(key for key, count in keys.items() if count > 1)
            if duplicates:
                raise HsError("VALIDATION_ERROR", f"Duplicate IDs found in batch input: {duplicates}")
        if action != "read":
            with self._state.lock:
                for row in inputs:
                    self._state.check_values(store.type, _row_properties(row))
        failing = firing.failing_rows()
        results: list[dict[str, object]] = []
        errors: list[dict[str, object]] = []
        missing: list[str] = []
        with self._state.lock:
            for index, row in enumerate(inputs):
                context = _context(row, action)
                try:
                    rule = failing.get(index)
                    if rule is not None:
                        raise _injected(rule, context)
                    results.append(run(store, row, body, firing))
                except HsError as exc:
                    if action == "read" and exc.category == "OBJECT_NOT_FOUND":
                        missing.append(str(row.get("id")))
                        continue
                    exc.context = {**exc.context, **context}
                    errors.append(exc.standard_error())
        if missing:
            errors.append(
                HsError(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {store.type[:-1].upper()} objects, they may be deleted or not "
                    "exist. Check that ids are valid.",
                    context={"ids": missing},
                ).standard_error()
            )
        payload: dict[str, object] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso_millis(self._clock.now()),
        }
        if errors:
            payload["numErrors"] = len(errors)
            payload["errors"] = errors
            return json_response(207, payload)
        return json_response(201 if action == "create" else 200, payload)

    def _read(
        self, store: ObjectStore, row: Row, body: Mapping[str, object], firing: Firing
    ) -> dict[str, object]:
        id_property = body.get("idProperty")
        obj = resolve(store, str(row.get("id", "")), str(id_property) if id_property else None)
        wanted = body.get("properties")
        names = [str(p) for p in wanted] if isinstance(wanted, list) else []
        return render(self._state, store, obj, names, (), _history(body))

    def _create(
        self, store: ObjectStore, row: Row, body: Mapping[str, object], firing: Firing
    ) -> dict[str, object]:
        props = _row_properties(row)
        links = parse_associations(self._state, store, row.get("associations"))
        obj = self._state.create(store.type, props)
        for target, to_id, type_id in links:
            self._state.associations.link(store.type, obj.id, target, to_id, type_id)
        return _traced(render(self._state, store, obj, _set(obj), ()), row)

    def _update(
        self, store: ObjectStore, row: Row, body: Mapping[str, object], firing: Firing
    ) -> dict[str, object]:
        id_property = row.get("idProperty")
        obj = resolve(store, str(row.get("id", "")), str(id_property) if id_property else None)
        if firing.take_lock(obj.id):
            raise locked(obj.id)
        props = _row_properties(row)
        obj = self._state.update(store.type, obj.id, props)
        return _traced(render(self._state, store, obj, list(props), ()), row)

    def _upsert(
        self, store: ObjectStore, row: Row, body: Mapping[str, object], firing: Firing
    ) -> dict[str, object]:
        id_property = str(row.get("idProperty") or "")
        prop = store.registry.properties.get(id_property)
        if prop is None or not prop.has_unique_value:
            raise HsError("VALIDATION_ERROR", f"idProperty {id_property!r} is not a unique value property")
        key = str(row.get("id", ""))
        props = dict(_row_properties(row))
        existing = store.by_unique(id_property, key)
        if existing is not None:
            if firing.take_lock(existing.id):
                raise locked(existing.id)
            obj = self._state.update(store.type, existing.id, props)
        else:
            obj = self._state.create(store.type, {**props, id_property: key})
        names = list(props) if existing is not None else _set(obj)
        out = _traced(render(self._state, store, obj, names, ()), row)
        out["new"] = existing is None
        return out


def _history(body: Mapping[str, object]) -> list[str]:
    """The names a read asks for with history (`propertiesWithHistory`)."""
    wanted = body.get("propertiesWithHistory")
    return [str(p) for p in wanted] if isinstance(wanted, list) else []


def _set(obj: HsObject) -> list[str]:
    return [name for name, value in obj.properties.items() if value is not None]


def _row_properties(row: Row) -> Mapping[str, object]:
    props = row.get("properties")
    if not isinstance(props, Mapping):
        raise HsError("VALIDATION_ERROR", "Each input needs a 'properties' object")
    return props


def _context(row: Row, action: str) -> dict[str, list[str]]:
    trace = row.get("objectWriteTraceId")
    if trace is not None:
        return {"objectWriteTraceId": [str(trace)]}
    if action != "create" and row.get("id") is not None:
        return {"ids": [str(row.get("id"))]}
    return {}


def _traced(rendered: dict[str, object], row: Row) -> dict[str, object]:
    trace = row.get("objectWriteTraceId")
    if trace is not None:
        rendered["objectWriteTraceId"] = str(trace)
    return rendered
