"""The in-memory Salesforce org: schemas, records, external-id indexes and the write rules.

Each table is a dict whose insertion order follows SystemModstamp (a write moves the record to the end), so
SOQL ordered by SystemModstamp sorts nearly-sorted data. Id and every External ID or unique field are also
indexed by their SOQL comparison key (`KeyIndex`), and each record carries a position stamp that follows
table order, so `lookup` hands SOQL the records a `Key__c IN (...)` names in the order a scan would meet
them. All access goes through ``lock``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from itertools import count

from sandbox.clock import SandboxClock
from sandbox.salesforce import history
from sandbox.salesforce.cdc import UI_ORIGIN, ChangeLog, change_context
from sandbox.salesforce.errors import SfError
from sandbox.salesforce.history_store import HistoryStore
from sandbox.salesforce.ids import make_id, normalize_id
from sandbox.salesforce.keyindex import KeyIndex
from sandbox.salesforce.schema import (
    STAGE_PROBABILITY,
    FieldDef,
    ObjectSchema,
    opportunity_schema,
    organization_schema,
    task_schema,
    user_schema,
)
from sandbox.salesforce.values import check_constraints, from_json

Record = dict[str, object]
_SKIP_KEYS = frozenset({"attributes", "id"})
_UPDATE_ALSO = ("LastModifiedDate", "LastModifiedById", "IsClosed", "IsWon", "Probability")
"""Fields a save may change besides the ones written (stamps and the values derived from the stage)."""


class SalesforceState:
    def __init__(self, clock: SandboxClock, bare: bool = False) -> None:
        self.lock = threading.RLock()
        self._clock = clock
        self.schemas: dict[str, ObjectSchema] = {
            s.name: s
            for s in (
                opportunity_schema(bare),
                task_schema(bare),
                user_schema(),
                organization_schema(),
                history.field_history_schema(),
                history.stage_history_schema(),
                history.field_definition_schema(),
            )
        }
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in self.schemas}
        self._counters: dict[str, int] = dict.fromkeys(self.schemas, 0)
        self._external: dict[tuple[str, str], dict[object, str | set[str]]] = {}
        """Ids by exact value of each External ID or unique field: the one id where one record holds the
        value (always, for a unique field), a set only where several do. A set per value was 12 MB for the
        57,000 task keys a 100,000-deal run writes."""
        self._keyed: dict[str, dict[str, KeyIndex]] = {}
        """Per object, the SOQL key index of Id and of each External ID or unique field, by field name."""
        self._position: dict[str, int] = {}
        """Record id → a stamp that grows with table order (rebuilt by `_reindex`, renewed by a write)."""
        self._stamps = count()
        self._latest: dict[str, datetime] = {}
        self.unordered: set[str] = set()
        """Objects whose table order no longer follows SystemModstamp (the clock was set back)."""
        self.default_owner_id: str | None = None
        self.deleted_fields: dict[tuple[str, str], tuple[FieldDef, dict[str, object]]] = {}
        """Deleted fields and their values by (object, lower-cased name), for `restore_field`."""
        self.tracked: dict[str, set[str]] = {"Opportunity": set(history.DEFAULT_TRACKED)}
        """Fields whose changes OpportunityFieldHistory records, by object (Set History Tracking)."""
        self.history = HistoryStore()
        """OpportunityFieldHistory and OpportunityHistory rows (not in `_tables`: kept compact)."""
        self.change_log: ChangeLog | None = None
        """Where Opportunity saves publish their change events (sandbox.salesforce.cdc), if anywhere."""
        self._reindex_all()

    def publish_changes(self, log: ChangeLog) -> None:
        """Publish an OpportunityChangeEvent for every Opportunity saved from now on into `log`."""
        with self.lock:
            self.change_log = log
            log.attach(self.schemas["Opportunity"])

    def _schema_changed(self, obj: str) -> None:
        if obj == "Opportunity" and self.change_log is not None:
            self.change_log.schema_changed()

    # ----- lookups ------------------------------------------------------------------------------------------
    def schema(self, name: str) -> ObjectSchema | None:
        found = self.schemas.get(name)
        if found is None:
            found = next((s for key, s in self.schemas.items() if key.lower() == name.lower()), None)
        return found

    def require_schema(self, name: str) -> ObjectSchema:
        found = self.schema(name)
        if found is None:
            raise SfError("NOT_FOUND", "The requested resource does not exist", status=404)
        return found

    def table(self, obj: str) -> dict[str, Record]:
        """The live table (callers hold ``lock``)."""
        return self._tables[obj]

    def find_external(self, obj: str, field: str, value: object) -> list[str]:
        held = self._external.get((obj, field), {}).get(value)
        if held is None:
            return []
        return [held] if isinstance(held, str) else sorted(held)

    def indexed_fields(self, obj: str) -> frozenset[str]:
        """The fields of `obj` that `lookup` serves: Id and the External ID or unique fields (a history
        object's OpportunityId)."""
        if obj in history.STORED:
            return frozenset({"OpportunityId"})
        return frozenset(self._keyed.get(obj, {}))

    def scan(self, obj: str) -> Iterable[Record]:
        """Every live record of `obj` in table order, for a query to run over (callers hold ``lock``)."""
        if obj in history.STORED:
            return list(self.history.rows(obj))
        return self._tables[obj].values()

    def lookup(self, obj: str, field: str, keys: Iterable[object]) -> list[Record]:
        """The live records of `obj` whose SOQL comparison key for the indexed `field` is one of `keys`,
        in table order (callers hold ``lock``)."""
        if obj in history.STORED:
            return list(self.history.rows(obj, keys))
        table, position = self._tables[obj], self._position
        found = sorted(self._keyed[obj][field].holders(keys), key=position.__getitem__)
        return [table[rid] for rid in found]

    # ----- the Python API (copies out, user edits in) -------------------------------------------------------
    def records(self, obj: str) -> list[Record]:
        with self.lock:
            return [dict(rec) for rec in self.scan(self.require_schema(obj).name)]

    def get(self, obj: str, record_id: str) -> Record | None:
        with self.lock:
            name, rid = self.require_schema(obj).name, normalize_id(record_id) or record_id
            if name in history.STORED:
                return next((dict(r) for r in self.scan(name) if r["Id"] == rid), None)
            rec = self._tables[name].get(rid)
            return dict(rec) if rec is not None else None

    def update(self, obj: str, record_id: str, fields: Mapping[str, object], by: str | None = None) -> Record:
        """A user editing the record in the UI: validated like an API write, bumps SystemModstamp. `by` is
        the user (LastModifiedById); by default the record's owner."""
        with self.lock:
            schema = self.require_schema(obj)
            rid = normalize_id(record_id) or record_id
            if rid not in self._tables[schema.name]:
                raise SfError("NOT_FOUND", f"no {schema.name} with id {record_id}", status=404)
            changes = self.deserialize(schema, fields)
            self.validate_update(schema, rid, changes, set())
            owner = self._tables[schema.name][rid].get("OwnerId")
            with change_context(UI_ORIGIN):
                self.commit_update(schema, rid, changes, by=by or (str(owner) if owner else None))
            return dict(self._tables[schema.name][rid])

    def set_history_tracking(self, obj: str, name: str, tracked: bool) -> None:
        """An admin ticking (or clearing) a field in Set History Tracking. Rows already recorded stay, as
        they do in Salesforce; changes from now on are recorded only while the field is tracked."""
        with self.lock:
            schema = self.require_schema(obj)
            spec = schema.lookup(name)
            if spec is None:
                raise KeyError(f"{schema.name} has no field {name}")
            held = self.tracked.setdefault(schema.name, set())
            if tracked:
                held.add(spec.name)
            else:
                held.discard(spec.name)

    def is_tracked(self, obj: str, name: str) -> bool:
        return name in self.tracked.get(obj, ())

    def field_definitions(self) -> list[Record]:
        """FieldDefinition rows of every object, as the schema and tracking stand now (callers hold
        ``lock``)."""
        entities = [s for s in self.schemas.values() if s.name not in history.READ_ONLY]
        return history.definition_rows(entities, self.is_tracked)

    def check_operation(self, schema: ObjectSchema, operation: str) -> None:
        """History and metadata objects are read-only through the API (describe: not createable)."""
        if schema.name in history.READ_ONLY:
            raise SfError(
                "INVALID_TYPE_FOR_OPERATION", f"entity type {schema.name} does not support {operation}"
            )

    def delete_field(self, obj: str, name: str) -> None:
        """Schema drift: the field disappears from describe, queries and every record. Salesforce keeps a
        deleted custom field and its data for 15 days, restorable until then (Salesforce Help, "Manage
        Deleted Custom Fields"): `restore_field` brings both back."""
        with self.lock:
            schema = self.require_schema(obj)
            spec = schema.lookup(name)
            if spec is None:
                raise KeyError(f"{schema.name} has no field {name}")
            del schema.fields[spec.name]
            values = {rid: rec.pop(spec.name, None) for rid, rec in self._tables[schema.name].items()}
            self.deleted_fields[(schema.name, spec.name.lower())] = (spec, values)
            self._reindex(schema.name)
            self._schema_changed(schema.name)

    def restore_field(self, obj: str, name: str) -> None:
        """Undelete a deleted field with the values it had; records keep their SystemModstamp."""
        with self.lock:
            schema = self.require_schema(obj)
            key = (schema.name, name.lower())
            if key not in self.deleted_fields:
                raise KeyError(f"{schema.name} has no deleted field {name}")
            spec, values = self.deleted_fields[key]
            if schema.lookup(spec.name) is not None:
                raise KeyError(f"{schema.name} has a field {spec.name} again; delete it before restoring")
            del self.deleted_fields[key]
            schema.fields[spec.name] = spec
            for rid, rec in self._tables[schema.name].items():
                rec[spec.name] = values.get(rid, spec.default)
            self._reindex(schema.name)
            self._schema_changed(schema.name)

    def rename_field(self, obj: str, old: str, new: str) -> None:
        with self.lock:
            schema = self.require_schema(obj)
            spec = schema.lookup(old)
            if spec is None:
                raise KeyError(f"{schema.name} has no field {old}")
            renamed = FieldDef(**{**spec.__dict__, "name": new})
            held = self.tracked.get(schema.name, set())
            if spec.name in held:
                held.discard(spec.name)
                held.add(new)
            schema.fields = {
                (new if key == spec.name else key): (renamed if key == spec.name else f)
                for key, f in schema.fields.items()
            }
            for rec in self._tables[schema.name].values():
                rec[new] = rec.pop(spec.name, None)
            self._reindex(schema.name)
            self._schema_changed(schema.name)

    def add_field(self, obj: str, spec: FieldDef) -> None:
        with self.lock:
            schema = self.require_schema(obj)
            schema.fields[spec.name] = spec
            for rec in self._tables[schema.name].values():
                rec.setdefault(spec.name, None)
            self._reindex(schema.name)
            self._schema_changed(schema.name)

    # ----- the write path -----------------------------------------------------------------------------------
    def deserialize(self, schema: ObjectSchema, payload: Mapping[str, object]) -> Record:
        """Field names and JSON types, as the API's deserializer checks them (request-level errors)."""
        out: Record = {}
        for key, value in payload.items():
            if key in _SKIP_KEYS or key == "Id":
                continue
            spec = schema.lookup(key)
            if spec is None:
                raise SfError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {schema.name}", [key]
                )
            out[spec.name] = from_json(spec, value)
        return out

    def validate_create(self, schema: ObjectSchema, fields: Record, claimed: set[tuple[str, object]]) -> None:
        self.check_operation(schema, "insert")
        self._check_writable(schema, fields, "createable")
        missing = [
            spec.name
            for spec in schema.fields.values()
            if spec.required_on_create and spec.name != "OwnerId" and fields.get(spec.name) is None
        ]
        if missing:
            raise SfError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        self._check_values(schema, None, fields, claimed)

    def validate_update(
        self, schema: ObjectSchema, rid: str, fields: Record, claimed: set[tuple[str, object]]
    ) -> None:
        self.check_operation(schema, "update")
        self._check_writable(schema, fields, "updateable")
        for name, value in fields.items():
            spec = schema.fields[name]
            if value is None and not spec.nillable:
                raise SfError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name])
        self._check_values(schema, rid, fields, claimed)

    def commit_create(self, schema: ObjectSchema, fields: Record, stamp: datetime | None = None) -> str:
        self._counters[schema.name] += 1
        rid = make_id(schema.key_prefix, self._counters[schema.name])
        now = stamp or self._clock.now()
        rec: Record = {}
        for name, spec in schema.fields.items():
            rec[name] = fields.get(name, spec.default)
        if rec.get("OwnerId") is None and "OwnerId" in schema.fields:
            rec["OwnerId"] = self.default_owner_id
        rec.update(Id=rid, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now)
        if "LastModifiedById" in schema.fields:
            rec["LastModifiedById"] = self.default_owner_id
        self._derive(schema.name, rec, fields)
        self._stamped(schema.name, now)
        self._tables[schema.name][rid] = rec
        self._index(schema.name, rec, add=True)
        if schema.name == "Opportunity":
            self._record_history(rec, None, now)
            if self.change_log is not None:
                self.change_log.record_create(rec, _text(rec.get("LastModifiedById")))
        return rid

    def commit_update(
        self,
        schema: ObjectSchema,
        rid: str,
        fields: Record,
        stamp: datetime | None = None,
        by: str | None = None,
    ) -> None:
        """Save changes; `by` is the user making them (None: the API user, the org's integration user)."""
        table = self._tables[schema.name]
        rec = table.pop(rid)
        self._index(schema.name, rec, add=False)
        before = self._history_fields(rec) if schema.name == "Opportunity" else None
        log = self.change_log if schema.name == "Opportunity" else None
        old = {n: rec.get(n) for n in (*fields, *_UPDATE_ALSO)} if log is not None and log.enabled else None
        rec.update(fields)
        now = stamp or self._clock.now()
        rec.update(LastModifiedDate=now, SystemModstamp=now)
        if "LastModifiedById" in schema.fields:
            rec["LastModifiedById"] = by or self.default_owner_id
        self._derive(schema.name, rec, fields)
        self._stamped(schema.name, now)
        table[rid] = rec
        self._index(schema.name, rec, add=True)
        if before is not None:
            self._record_history(rec, before, now)
        if log is not None and old is not None:
            log.record_update(rec, old, _text(rec.get("LastModifiedById")))

    def _record_history(self, rec: Record, before: Record | None, now: datetime) -> None:
        """The history rows one Opportunity save makes (`before` None for a create): a field history row
        per tracked field whose value changed (the 'created' row on a create, while any field is
        tracked), and an OpportunityHistory row on a create or when a stage field changed."""
        opportunity, by = str(rec["Id"]), self.default_owner_id
        schema = self.schemas["Opportunity"]
        tracked = self.tracked.get("Opportunity", set())
        store = self.history
        if before is None:
            if tracked:
                store.add_field(opportunity, "created", history.data_type(None), None, None, now, by)
        else:
            for name in sorted(tracked):
                old, new = before.get(name), rec.get(name)
                if name in schema.fields and old != new:
                    kind = history.data_type(schema.fields[name])
                    store.add_field(opportunity, name, kind, old, new, now, by)
        if before is None or any(before.get(n) != rec.get(n) for n in history.STAGE_FIELDS):
            stage, amount, close, probability = (rec.get(n) for n in history.STAGE_FIELDS)
            store.add_stage(opportunity, stage, amount, close, probability, now, by)

    def _history_fields(self, rec: Record) -> Record:
        """The values a save's history compares: the tracked fields and the stage fields (not a copy of
        the whole record: a run updates 100,000 opportunities)."""
        names = (*self.tracked.get("Opportunity", ()), *history.STAGE_FIELDS)
        return {name: rec.get(name) for name in names}

    def delete(self, schema: ObjectSchema, rid: str) -> None:
        self.check_operation(schema, "delete")
        rec = self._tables[schema.name].pop(rid)
        self._index(schema.name, rec, add=False)
        if schema.name == "Opportunity" and self.change_log is not None:
            self.change_log.record_delete(rec, self.default_owner_id)

    def insert_seed(self, obj: str, records: Iterable[Record]) -> None:
        """Bulk load without validation (seeds build complete, valid records)."""
        with self.lock:
            table = self._tables[obj]
            for rec in records:
                table[str(rec["Id"])] = rec
                stamp = rec.get("SystemModstamp")
                if isinstance(stamp, datetime):
                    self._stamped(obj, stamp)
            self._reindex(obj)

    def next_id(self, obj: str) -> str:
        self._counters[obj] += 1
        return make_id(self.schemas[obj].key_prefix, self._counters[obj])

    def clear(self) -> None:
        with self.lock:
            for table in self._tables.values():
                table.clear()
            self._latest.clear()
            self.unordered.clear()
            self._counters = dict.fromkeys(self.schemas, 0)
            self.history.clear()
            self._position.clear()
            self._reindex_all()

    def _stamped(self, obj: str, stamp: datetime) -> None:
        latest = self._latest.get(obj)
        if latest is not None and stamp < latest:
            self.unordered.add(obj)
        self._latest[obj] = max(stamp, latest or stamp)

    # ----- internals ----------------------------------------------------------------------------------------
    def _check_writable(self, schema: ObjectSchema, fields: Record, flag: str) -> None:
        blocked = [name for name in fields if not getattr(schema.fields[name], flag)]
        if blocked:
            raise SfError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(blocked)}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                blocked,
            )

    def _check_values(
        self, schema: ObjectSchema, rid: str | None, fields: Record, claimed: set[tuple[str, object]]
    ) -> None:
        for name, value in fields.items():
            spec = schema.fields[name]
            check_constraints(spec, value)
            if spec.type == "reference" and value is not None:
                self._check_reference(spec, str(value))
            if spec.unique and value is not None:
                holders = set(self.find_external(schema.name, name, value)) - {rid}
                if holders or (name, value) in claimed:
                    other = next(iter(holders), "in this request")
                    raise SfError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: {other}",
                        [name],
                    )
                claimed.add((name, value))

    def _check_reference(self, spec: FieldDef, value: str) -> None:
        rid = normalize_id(value)
        if rid is None:
            raise SfError("MALFORMED_ID", f"{spec.label}: id value of incorrect type: {value}", [spec.name])
        if not any(rid in self._tables[target] for target in spec.reference_to):
            raise SfError("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [spec.name])

    @staticmethod
    def _derive(obj: str, rec: Record, changed: Record) -> None:
        if obj == "Opportunity":
            stage = rec.get("StageName")
            rec["IsClosed"] = stage in ("Closed Won", "Closed Lost")
            rec["IsWon"] = stage == "Closed Won"
            if "StageName" in changed and "Probability" not in changed and isinstance(stage, str):
                rec["Probability"] = float(STAGE_PROBABILITY.get(stage, 0))
        elif obj == "Task":
            rec["IsClosed"] = rec.get("Status") == "Completed"
        elif obj == "User":
            rec["Name"] = rec.get("Name") or rec.get("Username")

    def _index(self, obj: str, rec: Record, *, add: bool) -> None:
        """Enter `rec` in (or take it out of) the indexes; a record entered is the last in table order."""
        rid = str(rec["Id"])
        if add:
            for keyed in self._keyed[obj].values():
                keyed.add(rid, rec)
            self._position[rid] = next(self._stamps)
        else:
            for keyed in self._keyed[obj].values():
                keyed.remove(rid, rec)
            del self._position[rid]
        for (index_obj, name), index in self._external.items():
            if index_obj != obj:
                continue
            value = rec.get(name)
            if value is None:
                continue
            held = index.get(value)
            if add:
                if held is None:
                    index[value] = rid
                elif isinstance(held, set):
                    held.add(rid)
                elif held != rid:
                    index[value] = {held, rid}
            elif held == rid:
                del index[value]
            elif isinstance(held, set):
                held.discard(rid)
                if len(held) == 1:
                    index[value] = next(iter(held))

    def _reindex_all(self) -> None:
        for obj in self.schemas:
            self._reindex(obj)

    def _reindex(self, obj: str) -> None:
        """Rebuild `obj`'s indexes from its schema and table (positions follow the table's order)."""
        fields = self.schemas[obj].fields.values()
        for key in [key for key in self._external if key[0] == obj]:
            del self._external[key]
        for spec in fields:
            if spec.external_id or spec.unique:
                self._external[(obj, spec.name)] = {}
        self._keyed[obj] = {
            spec.name: KeyIndex(spec.name, spec.soql_type)
            for spec in fields
            if spec.name == "Id" or spec.external_id or spec.unique
        }
        for rec in self._tables.get(obj, {}).values():
            self._index(obj, rec, add=True)


def _text(value: object) -> str | None:
    return str(value) if value is not None else None
