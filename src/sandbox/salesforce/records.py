"""Single-record sObject resources: create, read, update, delete, upsert by external id, and describe."""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.clock import SandboxClock
from sandbox.faultbook import Firing
from sandbox.http import Request, Response, empty_response, json_response
from sandbox.salesforce import history
from sandbox.salesforce.errors import SfError
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.schema import ObjectSchema
from sandbox.salesforce.state import Record, SalesforceState
from sandbox.salesforce.values import to_json

_READ_ONLY = frozenset({"Organization", *history.READ_ONLY})
_MASTER_RECORD_TYPE = "012000000000000AAA"


def object_entry(schema: ObjectSchema, version: str) -> dict[str, object]:
    """The object as the global describe lists it (and ``/sobjects/X`` as ``objectDescribe``): the keys a
    real one (API v61.0) sends, in its order."""
    base = f"/services/data/v{version}/sobjects/{schema.name}"
    writable = schema.name not in _READ_ONLY
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": writable,
        "custom": False,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": writable and schema.name != "User",
        "deprecatedAndHidden": False,
        "feedEnabled": schema.name == "Opportunity",
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": schema.key_prefix or None,
        "label": schema.label,
        "labelPlural": schema.label + "s",
        "layoutable": writable,
        "mergeable": False,
        "mruEnabled": writable,
        "name": schema.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": writable,
        "triggerable": writable,
        "undeletable": writable and schema.name != "User",
        "updateable": writable,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


def describe(schema: ObjectSchema, version: str) -> dict[str, object]:
    """``/sobjects/X/describe``: every key a real describe sends, in alphabetical order as it does."""
    entry = object_entry(schema, version)
    layoutable = bool(entry["layoutable"])
    layouts = f"/services/data/v{version}/sobjects/{schema.name}/describe/layouts"
    record_types = [
        {
            "active": True,
            "available": True,
            "defaultRecordTypeMapping": True,
            "developerName": "Master",
            "master": True,
            "name": "Master",
            "recordTypeId": _MASTER_RECORD_TYPE,
            "urls": {"layout": f"{layouts}/{_MASTER_RECORD_TYPE}"},
        }
    ]
    full: dict[str, object] = {
        **entry,
        "actionOverrides": [],
        "childRelationships": [],
        "compactLayoutable": layoutable,
        "defaultImplementation": None,
        "extendedBy": None,
        "extendsInterfaces": None,
        "fields": [spec.describe() for spec in schema.fields.values()],
        "implementedBy": None,
        "implementsInterfaces": None,
        "listviewable": None,
        "lookupLayoutable": None,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": record_types if layoutable else [],
        "searchLayoutable": layoutable,
        "sobjectDescribeOption": "FULL",
        "supportedScopes": [],
    }
    return dict(sorted(full.items()))


def global_describe(state: SalesforceState, version: str) -> dict[str, object]:
    sobjects = [object_entry(schema, version) for schema in state.schemas.values()]
    return {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}


def render(
    schema: ObjectSchema, rec: Record, version: str, fields: list[str] | None = None
) -> dict[str, object]:
    out: dict[str, object] = {
        "attributes": {
            "type": schema.name,
            "url": f"/services/data/v{version}/sobjects/{schema.name}/{rec['Id']}",
        }
    }
    names = fields if fields else list(schema.fields)
    for name in names:
        spec = schema.lookup(name)
        if spec is None:
            raise SfError("INVALID_FIELD", f"No such column '{name}' on entity '{schema.name}'", [name])
        out[spec.name] = to_json(rec.get(spec.name))
    return out


class RecordService:
    def __init__(self, state: SalesforceState, clock: SandboxClock) -> None:
        self._state = state
        self._clock = clock

    def _existing(self, schema: ObjectSchema, raw_id: str) -> str:
        rid = normalize_id(raw_id)
        if rid is None or rid not in self._state.table(schema.name):
            raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
        return rid

    def create(self, schema: ObjectSchema, request: Request) -> Response:
        state = self._state
        body = request.json()
        if not isinstance(body, Mapping):
            raise SfError("JSON_PARSER_ERROR", "The request body must be a JSON object")
        with state.lock:
            fields = state.deserialize(schema, body)
            state.validate_create(schema, fields, set())
            rid = state.commit_create(schema, fields)
        return json_response(201, {"id": rid, "success": True, "errors": []})

    def read(self, schema: ObjectSchema, raw_id: str, request: Request, version: str) -> Response:
        if schema.name in history.STORED:
            found = self._state.get(schema.name, normalize_id(raw_id) or raw_id)
            if found is None:
                raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
            return json_response(200, render(schema, found, version, request.params("fields")))
        with self._state.lock:
            rid = self._existing(schema, raw_id)
            rec = dict(self._state.table(schema.name)[rid])
        return json_response(200, render(schema, rec, version, request.params("fields")))

    def update(self, schema: ObjectSchema, raw_id: str, request: Request, firing: Firing) -> Response:
        state = self._state
        body = request.json()
        if not isinstance(body, Mapping):
            raise SfError("JSON_PARSER_ERROR", "The request body must be a JSON object")
        with state.lock:
            state.check_operation(schema, "update")
            rid = self._existing(schema, raw_id)
            fields = state.deserialize(schema, body)
            if firing.take_lock(rid):
                raise SfError(
                    "UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record: {rid}"
                )
            state.validate_update(schema, rid, fields, set())
            state.commit_update(schema, rid, fields)
        return empty_response(204)

    def delete(self, schema: ObjectSchema, raw_id: str, firing: Firing) -> Response:
        with self._state.lock:
            self._state.check_operation(schema, "delete")
            rid = self._existing(schema, raw_id)
            if firing.take_lock(rid):
                raise SfError(
                    "UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record: {rid}"
                )
            self._state.delete(schema, rid)
        return empty_response(204)

    def by_external_id(
        self, schema: ObjectSchema, field: str, value: str, request: Request, version: str
    ) -> Response:
        """``sobjects/<Object>/<ExtField>/<value>``: GET reads; PATCH upserts (201 new, 200 updated, 300)."""
        state = self._state
        with state.lock:
            spec = schema.lookup(field)
            if spec is None or not spec.external_id:
                raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
            matches = state.find_external(schema.name, spec.name, value)
            if len(matches) > 1:
                urls = [f"/services/data/v{version}/sobjects/{schema.name}/{rid}" for rid in matches]
                return json_response(300, urls)
            if request.method == "GET":
                if not matches:
                    raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
                return json_response(200, render(schema, dict(state.table(schema.name)[matches[0]]), version))
            body = request.json()
            if not isinstance(body, Mapping):
                raise SfError("JSON_PARSER_ERROR", "The request body must be a JSON object")
            fields = state.deserialize(schema, body)
            if matches:
                state.validate_update(schema, matches[0], fields, set())
                state.commit_update(schema, matches[0], fields)
                return json_response(200, {"id": matches[0], "success": True, "errors": [], "created": False})
            fields[spec.name] = value
            state.validate_create(schema, fields, set())
            rid = state.commit_create(schema, fields)
            return json_response(201, {"id": rid, "success": True, "errors": [], "created": True})
