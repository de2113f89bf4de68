"""Reading Salesforce change events (`OpportunityChangeEvent`) as the Pub/Sub API delivers them.

A payload is Avro binary without a header ("schemaless"), written with the schema its `schema_id` names
(GetSchema). The schema follows the org's Opportunity fields, so a field added or deleted by an admin
gives a new schema id: schemas are parsed once per id (`SchemaCache`).

`changedFields`, `nulledFields` and `diffFields` in the `ChangeEventHeader` are not names but bitmaps, as
the real API sends them: a string `"0x…"` whose bit i (least significant first) is the schema's top-level
field i, and for a compound field `"<parent position>-0x…"` over the parent record's own fields
(Pub/Sub API guide, "Event Deserialization Considerations"; forcedotcom/pub-sub-api
`python/util/ChangeEventHeaderUtility.py`).

Echoes: a change bant-sync itself made must not trigger a re-assessment. Salesforce writes the
`Sforce-Call-Options` client name of the request into `changeOrigin` (`…;client=bant-sync`); a change
that touched only bant-sync's output fields and system stamps is one too, whoever made it (a person who
only retyped a status re-assesses nothing: the next run rewrites it anyway).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastavro

from connectors.model import DealChange
from connectors.salesforce.client import CLIENT_NAME

HEADER = "ChangeEventHeader"
SYSTEM_FIELDS = frozenset({"LastModifiedDate", "SystemModstamp", "LastModifiedById"})
"""Stamps Salesforce sets on every save: a change of these alone changed nothing a person typed."""
OVERFLOW = "GAP_OVERFLOW"
"""Salesforce could not say which records changed (more than it can name in one event): reconcile."""
ECHO_TYPES = frozenset({"UPDATE"})
"""Only an update names its changed fields; a create, delete or gap event is never an echo by its
fields (only by its origin)."""


class DecodeError(ValueError):
    """A payload, header or bitmap that does not match its schema."""


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One decoded change event: its replay id, the records and what happened to them."""

    replay_id: bytes
    entity: str
    record_ids: tuple[str, ...]
    change_type: str
    change_origin: str
    commit_time: datetime
    changed_fields: tuple[str, ...]


def bitmap_fields(bitmap: str, names: Sequence[str]) -> list[str]:
    """The names of the bits set in a `"0x…"` bitmap, bit 0 (least significant) being `names[0]`."""
    text = bitmap.strip()
    if not text.lower().startswith("0x"):
        raise DecodeError(f"a field bitmap must start with 0x, not {text[:40]!r}")
    try:
        value = int(text[2:], 16)
    except ValueError:
        raise DecodeError(f"a field bitmap is not hexadecimal: {text[:40]!r}") from None
    if value.bit_length() > len(names):
        raise DecodeError(
            f"bitmap {text[:40]!r} names field {value.bit_length() - 1}: the schema has {len(names)}"
        )
    return [names[i] for i in range(value.bit_length()) if value >> i & 1]


def _record_fields(avro_type: Any) -> list[str] | None:
    """The field names of a record type, or of the record in an optional union; None for anything else."""
    if isinstance(avro_type, list):
        records = [t for t in avro_type if isinstance(t, dict) and t.get("type") == "record"]
        return _record_fields(records[0]) if len(records) == 1 else None
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return [str(f["name"]) for f in avro_type.get("fields", [])]
    return None


class EventSchema:
    """One schema id's Avro schema, parsed for fastavro, and the field names its bitmaps index."""

    def __init__(self, schema_id: str, schema_json: str) -> None:
        try:
            raw = json.loads(schema_json)
            self._parsed = fastavro.parse_schema(raw)
            fields = raw["fields"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DecodeError(f"schema {schema_id} is not an Avro record schema: {exc}") from None
        self.schema_id = schema_id
        self.fields: list[str] = [str(f["name"]) for f in fields]
        self._nested: dict[int, list[str]] = {}
        for position, spec in enumerate(fields):
            nested = _record_fields(spec.get("type"))
            if nested is not None:
                self._nested[position] = nested

    def read(self, payload: bytes) -> dict[str, Any]:
        """The payload as a record (fastavro's schemaless reader)."""
        try:
            record = fastavro.schemaless_reader(io.BytesIO(payload), self._parsed, None)
        except (EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise DecodeError(
                f"a payload does not match schema {self.schema_id}: {type(exc).__name__}"
            ) from None
        if not isinstance(record, dict):
            raise DecodeError(f"a payload of schema {self.schema_id} is not a record")
        return record

    def field_names(self, bitmaps: Iterable[str]) -> tuple[str, ...]:
        """The fields named by a header's bitmap list: top-level names, and `Parent.child` for the
        fields of a compound field."""
        names: list[str] = []
        for bitmap in bitmaps:
            parent, dash, nested = bitmap.partition("-")
            if not dash:
                names.extend(bitmap_fields(bitmap, self.fields))
                continue
            if not parent.isdigit() or int(parent) not in self._nested:
                raise DecodeError(
                    f"bitmap {bitmap[:40]!r} names no compound field of schema {self.schema_id}"
                )
            position = int(parent)
            prefix = self.fields[position]
            names.extend(f"{prefix}.{child}" for child in bitmap_fields(nested, self._nested[position]))
        return tuple(names)

    def decode(self, replay_id: bytes, payload: bytes) -> ChangeEvent:
        """One ConsumerEvent's payload as a ChangeEvent."""
        header = self.read(payload).get(HEADER)
        if not isinstance(header, dict):
            raise DecodeError(f"a payload of schema {self.schema_id} has no {HEADER}")
        commit = header.get("commitTimestamp")
        if not isinstance(commit, int):
            raise DecodeError(f"a {HEADER} of schema {self.schema_id} has no commitTimestamp")
        return ChangeEvent(
            replay_id=replay_id,
            entity=str(header.get("entityName") or ""),
            record_ids=tuple(str(r) for r in header.get("recordIds") or ()),
            change_type=str(header.get("changeType") or ""),
            change_origin=str(header.get("changeOrigin") or ""),
            commit_time=datetime.fromtimestamp(commit / 1000, UTC),
            changed_fields=self.field_names(str(b) for b in header.get("changedFields") or ()),
        )


class SchemaCache:
    """Parsed schemas by schema id; `fetch(schema_id)` (GetSchema) is asked once per id."""

    def __init__(self, fetch: Callable[[str], str]) -> None:
        self._fetch = fetch
        self._schemas: dict[str, EventSchema] = {}

    def get(self, schema_id: str) -> EventSchema:
        schema = self._schemas.get(schema_id)
        if schema is None:
            schema = self._schemas[schema_id] = EventSchema(schema_id, self._fetch(schema_id))
        return schema

    def __len__(self) -> int:
        return len(self._schemas)


def own_origin(change_origin: str) -> bool:
    """Whether `changeOrigin` names bant-sync's client (`…;client=bant-sync`)."""
    return any(part.strip() == f"client={CLIENT_NAME}" for part in change_origin.split(";"))


def echo_fields(output_fields: Iterable[str]) -> frozenset[str]:
    """The fields (lower-case) a change may touch and still be an echo: bant-sync's output fields (the
    connection's mapping) and the system stamps."""
    return frozenset(f.lower() for f in (*output_fields, *SYSTEM_FIELDS))


def is_echo(event: ChangeEvent, own_fields: frozenset[str]) -> bool:
    """bant-sync's own change: its client name in `changeOrigin`, or an update of only `own_fields`
    (see `echo_fields`)."""
    if own_origin(event.change_origin):
        return True
    changed = event.changed_fields
    return event.change_type in ECHO_TYPES and bool(changed) and all(f.lower() in own_fields for f in changed)


def deal_change(event: ChangeEvent, own_fields: frozenset[str]) -> DealChange:
    """The CRM-neutral change the worker records: one per event, keyed by its replay id."""
    return DealChange(event.replay_id.hex(), event.record_ids, event.commit_time, is_echo(event, own_fields))


def output_field_names(field_map: Mapping[str, str], output_keys: Iterable[str]) -> list[str]:
    """The Opportunity fields of bant-sync's outputs under the connection's mapping."""
    return [field_map[key] for key in output_keys if key in field_map]
