"""SOQL over REST: ``query?q=`` and ``query/<locator>-<offset>`` pages served from a per-locator snapshot.

Pages hold up to 2,000 records; ``Sforce-Query-Options: batchSize=N`` asks for 200..2,000 (REST API
Developer Guide, "Query Options Header"). The full result is kept per locator as value tuples, so
follow-up pages neither re-run the query nor see later writes.

A field deleted (or renamed) after the query ran is left out of every later page of that query: the field
no longer exists when the page is served. Salesforce documents the cursor as holding the matching ids, the
rows being read as each batch is requested ("Querying a standard or custom object gathers all the IDs and
creates a server-side cursor to page through", SOAP API Developer Guide, queryMore()); it does not document
what a batch looks like after a selected field is deleted. A new query naming the field fails with
INVALID_FIELD, as it does in Salesforce.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sandbox import soql
from sandbox.http import Request, Response, json_response
from sandbox.salesforce.errors import SfError
from sandbox.salesforce.history import FIELD_DEFINITION, STORED
from sandbox.salesforce.state import Record, SalesforceState
from sandbox.salesforce.values import to_json

DEFAULT_BATCH = 2000
MIN_BATCH = 200
_MAX_OPEN_LOCATORS = 10
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass
class _Snapshot:
    sobject: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]
    batch: int
    fields: frozenset[str] = frozenset()
    """The columns that were fields of the object when the query ran (not relationship columns)."""
    served_to_end: bool = False
    """Its last page has been served. Such a snapshot is dropped by the next query that scans the table or
    opens a locator (`QueryService._drop_finished`), so that finished 100,000-row results (about 15 MB
    each) do not wait for ten newer queries to push them out; its pages can still be fetched again (a
    retried request) until then."""


def batch_size(request: Request) -> int:
    match = _BATCH_OPTION.search(request.header("sforce-query-options") or "")
    if not match:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(DEFAULT_BATCH, int(match.group(1))))


def _lower_bound(condition: soql.Condition) -> datetime | None:
    """The earliest SystemModstamp a record can have and still match, when the WHERE clause implies one."""
    if isinstance(condition, soql.Compare):
        is_stamp = condition.field.name.lower() == "systemmodstamp" and condition.op in (">", ">=", "=")
        value = condition.value.value
        return value if is_stamp and isinstance(value, datetime) else None
    if isinstance(condition, soql.And):
        found = [bound for part in condition.parts if (bound := _lower_bound(part)) is not None]
        return max(found) if found else None
    if isinstance(condition, soql.Or):
        bounds = [_lower_bound(part) for part in condition.parts]
        return min(b for b in bounds if b is not None) if all(b is not None for b in bounds) else None
    return None


def _candidates(
    state: SalesforceState, obj: str, query: soql.Query, fields: Mapping[str, str]
) -> Iterable[Record]:
    """Records that may match, in table order, for the engine to run the whole query over.

    A top-level `Key__c IN (...)` or `Key__c = 'x'` on Id or an External ID / unique field reads just the
    records holding those keys from the state's index, as Salesforce's own index does: bant-sync's task
    lookups name 200 keys among tens of thousands of tasks. Otherwise, with a SystemModstamp lower bound,
    only the tail of the (modstamp-ordered) table is handed to the engine, so an incremental query over
    100,000 records reads only what changed."""
    if obj == FIELD_DEFINITION:
        _require_entity_filter(query)
        return state.field_definitions()
    probe = soql.index_probe(query, fields, state.indexed_fields(obj))
    if probe is not None:
        return state.lookup(obj, probe.field, probe.keys)
    if obj in STORED:
        return state.scan(obj)
    table = state.table(obj)
    since = _lower_bound(query.where) if query.where is not None else None
    if since is None or obj in state.unordered or "SystemModstamp" not in state.schemas[obj].fields:
        return table.values()
    tail: list[Record] = []
    for rec in reversed(table.values()):
        stamp = rec.get("SystemModstamp")
        if isinstance(stamp, datetime) and stamp < since:
            break
        tail.append(rec)
    tail.reverse()
    return tail


def _require_entity_filter(query: soql.Query) -> None:
    """FieldDefinition is a view over metadata: a query must name the object (or the field) it reads, by a
    top-level `EntityDefinitionId` or `DurableId` condition (Object Reference, "FieldDefinition": "must be
    filtered"; the message wording is the sandbox's)."""
    parts = query.where.parts if isinstance(query.where, soql.And) else (query.where,)
    named = {
        part.field.name.lower()
        for part in parts
        if isinstance(part, soql.Compare | soql.InList) and not isinstance(part, soql.Like)
    }
    if not named & {"entitydefinitionid", "durableid"}:
        raise SfError(
            "MALFORMED_QUERY",
            "FieldDefinition: a query must filter on EntityDefinitionId or DurableId",
        )


class QueryService:
    def __init__(self, state: SalesforceState) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._open: OrderedDict[str, _Snapshot] = OrderedDict()

    def run(self, text: str, version: str, batch: int) -> Response:
        try:
            query = soql.parse(text)
        except soql.SoqlError as exc:
            raise SfError(exc.code, exc.message) from exc
        state = self._state
        schema = state.schema(query.sobject)
        if schema is None:
            raise SfError(
                "INVALID_TYPE",
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
            )
        with state.lock:
            try:
                types = schema.soql_fields()
                if (
                    not query.is_count
                    and soql.index_probe(query, types, state.indexed_fields(schema.name)) is None
                ):
                    soql.execute_values(query, (), types)  # a query that fails drops nothing
                    self._drop_finished()
                selected, rows, total = soql.execute_values(
                    query, _candidates(state, schema.name, query, types), types
                )
            except soql.SoqlError as exc:
                raise SfError(exc.code, exc.message) from exc
        if query.is_count:
            return json_response(200, {"totalSize": total, "done": True, "records": []})
        columns = selected if rows else ()
        fields = frozenset(c for c in columns if schema.lookup(c) is not None)
        snapshot = _Snapshot(schema.name, columns, rows, batch, fields)
        locator = None
        if len(snapshot.rows) > batch:
            locator = "01g" + secrets.token_hex(8)[:15]
            self._drop_finished()
            with self._lock:
                self._open[locator] = snapshot
                while len(self._open) > _MAX_OPEN_LOCATORS:
                    self._open.popitem(last=False)
        return json_response(200, self._page(snapshot, locator, 0, version))

    def _drop_finished(self) -> None:
        """Forget the snapshots whose last page was served: before a valid query that scans the table runs
        (so a rerun's 100,000-row result is not built beside the last run's) and when a locator opens. A query
        answered from an index (a task lookup, run while another query pages) drops nothing before it runs,
        so a retried last page of the query being paged is still served."""
        with self._lock:
            for done in [key for key, kept in self._open.items() if kept.served_to_end]:
                del self._open[done]

    def more(self, token: str, version: str) -> Response:
        locator, _, offset_text = token.rpartition("-")
        with self._lock:
            snapshot = self._open.get(locator)
            if snapshot is not None:
                self._open.move_to_end(locator)
        if snapshot is None or not offset_text.isdigit() or int(offset_text) > len(snapshot.rows):
            raise SfError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return json_response(
            200, self._page(snapshot, locator, int(offset_text), version, self._gone(snapshot))
        )

    def _gone(self, snapshot: _Snapshot) -> frozenset[str]:
        """The snapshot's fields that no longer exist on the object (deleted or renamed since the query)."""
        state = self._state
        with state.lock:
            schema = state.schemas.get(snapshot.sobject)
            return frozenset(c for c in snapshot.fields if schema is None or schema.lookup(c) is None)

    @staticmethod
    def _page(
        snapshot: _Snapshot,
        locator: str | None,
        offset: int,
        version: str,
        gone: frozenset[str] = frozenset(),
    ) -> dict[str, object]:
        end = offset + snapshot.batch
        base = f"/services/data/v{version}/sobjects/{snapshot.sobject}"
        id_column = snapshot.columns.index("Id") if "Id" in snapshot.columns else None
        served = [(i, c) for i, c in enumerate(snapshot.columns) if c not in gone]
        records = []
        for values in snapshot.rows[offset:end]:
            url = f"{base}/{values[id_column]}" if id_column is not None else base
            record: dict[str, object] = {"attributes": {"type": snapshot.sobject, "url": url}}
            for index, column in served:
                record[column] = to_json(values[index])
            records.append(record)
        page: dict[str, object] = {"totalSize": len(snapshot.rows), "done": end >= len(snapshot.rows)}
        if end >= len(snapshot.rows):
            snapshot.served_to_end = True
        if end < len(snapshot.rows) and locator is not None:
            page["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        page["records"] = records
        return page
