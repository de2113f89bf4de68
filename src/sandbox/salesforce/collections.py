"""sObject Collections: ``composite/sobjects`` create (POST) / update (PATCH) and upsert by external id
(``PATCH composite/sobjects/<Object>/<ExternalIdField>``).

Up to 200 records per call; HTTP 200 with one SaveResult per record, in order, even when rows fail; with
``allOrNone`` every row fails if one does, the innocent ones with ALL_OR_NONE_OPERATION_ROLLED_BACK (REST API
Developer Guide, "sObject Collections"). Field names and JSON types are checked for the whole request first
(a bad one fails the request with 400), as the API deserialises the body before saving anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sandbox.clock import SandboxClock
from sandbox.faultbook import Firing
from sandbox.faults import FaultRule
from sandbox.http import Request, Response, json_response
from sandbox.salesforce.errors import DEFAULT_MESSAGES, SfError
from sandbox.salesforce.ids import normalize_id
from sandbox.salesforce.schema import ObjectSchema
from sandbox.salesforce.state import Record, SalesforceState

MAX_RECORDS = 200
_ROLLED_BACK = SfError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)


@dataclass
class _Row:
    index: int
    schema: ObjectSchema
    fields: Record
    record_id: str | None = None
    ext_value: object = None
    created: bool | None = None
    error: SfError | None = None
    apply: Callable[[], None] | None = field(default=None, repr=False)


def _records(request: Request) -> tuple[bool, list[Mapping[str, object]]]:
    body = request.json()
    if not isinstance(body, Mapping):
        raise SfError("JSON_PARSER_ERROR", 'The request body must be {"allOrNone": ..., "records": [...]}')
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise SfError("JSON_PARSER_ERROR", 'The request body must be {"allOrNone": ..., "records": [...]}')
    if len(records) > MAX_RECORDS:
        raise SfError(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call",
        )
    return bool(body.get("allOrNone", False)), records


def _row_type(
    state: SalesforceState, record: Mapping[str, object], expected: ObjectSchema | None
) -> ObjectSchema:
    attributes = record.get("attributes")
    name = attributes.get("type") if isinstance(attributes, Mapping) else None
    if name is None and expected is not None:
        return expected
    schema = state.schema(str(name)) if isinstance(name, str) else None
    if schema is None or (expected is not None and schema is not expected):
        raise SfError("INVALID_TYPE", "Must send a concrete entity type.")
    return schema


class CollectionWriter:
    def __init__(self, state: SalesforceState, clock: SandboxClock) -> None:
        self._state = state
        self._clock = clock

    def create(self, request: Request, firing: Firing) -> Response:
        all_or_none, records = _records(request)
        state = self._state
        with state.lock:
            rows = [_Row(i, _row_type(state, r, None), {}) for i, r in enumerate(records)]
            for row, record in zip(rows, records, strict=True):
                if "Id" in record or "id" in record:
                    row.error = SfError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                row.fields = state.deserialize(row.schema, record)
            return self._save(rows, all_or_none, firing, upsert=False)

    def update(self, request: Request, firing: Firing) -> Response:
        all_or_none, records = _records(request)
        state = self._state
        with state.lock:
            rows = []
            for i, record in enumerate(records):
                row = _Row(i, _row_type(state, record, None), {})
                row.fields = state.deserialize(row.schema, record)
                raw_id = record.get("Id", record.get("id"))
                if not isinstance(raw_id, str) or not raw_id:
                    row.error = SfError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                elif (rid := normalize_id(raw_id)) is None:
                    row.error = SfError("MALFORMED_ID", f"malformed id {raw_id}", ["Id"])
                else:
                    row.record_id = rid
                rows.append(row)
            return self._save(rows, all_or_none, firing, upsert=False)

    def upsert(self, request: Request, firing: Firing, obj: str, ext_field: str) -> Response:
        all_or_none, records = _records(request)
        state = self._state
        with state.lock:
            schema = state.require_schema(obj)
            spec = schema.lookup(ext_field)
            if spec is None or not spec.external_id:
                raise SfError(
                    "INVALID_FIELD", f"Field {ext_field} is not an external id field on {schema.name}"
                )
            rows = [_Row(i, _row_type(state, r, schema), {}) for i, r in enumerate(records)]
            for row, record in zip(rows, records, strict=True):
                row.fields = state.deserialize(schema, record)
                row.ext_value = row.fields.get(spec.name)
            counts = Counter(row.ext_value for row in rows if row.ext_value is not None)
            for row in rows:
                if row.ext_value is None:
                    row.error = SfError("MISSING_ARGUMENT", f"{spec.name} not specified", [spec.name])
                elif counts[row.ext_value] > 1:
                    row.error = SfError(
                        "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {row.ext_value}"
                    )
                    continue
                else:
                    matches = state.find_external(schema.name, spec.name, row.ext_value)
                    if len(matches) > 1:
                        row.error = SfError(
                            "DUPLICATE_EXTERNAL_ID",
                            f"{spec.name}: more than one record found for external id field: {matches}",
                            [spec.name],
                        )
                    elif matches:
                        row.record_id = matches[0]
                        row.fields.pop(spec.name, None)
                    row.created = not matches
            return self._save(rows, all_or_none, firing, upsert=True)

    def _save(self, rows: list[_Row], all_or_none: bool, firing: Firing, upsert: bool) -> Response:
        stamp = self._clock.now()
        injected = firing.failing_rows()
        row_fault: FaultRule | None = firing.response
        claimed: set[tuple[str, object]] = set()
        for row in rows:
            if row.error is None:
                row.error = self._plan(row, injected.get(row.index), row_fault, firing, claimed, stamp)
            if row.error is None and not all_or_none and row.apply is not None:
                row.apply()
        failed = any(row.error is not None for row in rows)
        if all_or_none and not failed:
            for row in rows:
                if row.apply is not None:
                    row.apply()
        results = []
        for row in rows:
            if row.error is None and all_or_none and failed:
                results.append({"success": False, "errors": [_ROLLED_BACK.save_error()]})
            elif row.error is not None:
                result: dict[str, object] = {"success": False, "errors": [row.error.save_error()]}
                if row.record_id is not None and not upsert:
                    result = {"id": row.record_id, **result}
                results.append(result)
            else:
                ok: dict[str, object] = {"id": row.record_id, "success": True, "errors": []}
                if upsert:
                    ok["created"] = bool(row.created)
                results.append(ok)
        return json_response(200, results)

    def _plan(
        self,
        row: _Row,
        partial: FaultRule | None,
        row_fault: FaultRule | None,
        firing: Firing,
        claimed: set[tuple[str, object]],
        stamp: datetime,
    ) -> SfError | None:
        state = self._state
        if row_fault is not None and row_fault.error_code:
            return SfError(row_fault.error_code, row_fault.message)
        if partial is not None:
            code = partial.error_code or "FIELD_CUSTOM_VALIDATION_EXCEPTION"
            return SfError(code, partial.message or DEFAULT_MESSAGES.get(code))
        try:
            if row.record_id is None:
                state.validate_create(row.schema, row.fields, claimed)

                def create() -> None:
                    row.record_id = state.commit_create(row.schema, row.fields, stamp)

                row.apply = create
                return None
            if row.record_id not in state.table(row.schema.name):
                return SfError("ENTITY_IS_DELETED", "entity is deleted", [])
            if firing.take_lock(row.record_id):
                return SfError(
                    "UNABLE_TO_LOCK_ROW", f"unable to obtain exclusive access to this record: {row.record_id}"
                )
            state.validate_update(row.schema, row.record_id, row.fields, claimed)
            record_id = row.record_id

            def update() -> None:
                state.commit_update(row.schema, record_id, row.fields, stamp)

            row.apply = update
            return None
        except SfError as exc:
            return exc
