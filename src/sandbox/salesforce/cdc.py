"""Change Data Capture for Opportunity: the event log the Pub/Sub API endpoint (`sandbox.salesforce.pubsub`)
streams from.

What a real org publishes, and what this log copies (Salesforce docs, "Change Data Capture Developer Guide"
and the Pub/Sub API guide, developer.salesforce.com):

- One change event per saved record: CREATE, UPDATE, DELETE (UNDELETE and the GAP_* types are not made
  here). A change event carries a `ChangeEventHeader` (entityName, recordIds, changeType, changeOrigin,
  transactionKey, sequenceNumber, commitTimestamp in epoch ms, commitNumber, commitUser, nulledFields,
  diffFields, changedFields) and the record's fields ("ChangeEventHeader Fields"; "Change Event Message
  Structure"). Records saved in one transaction share the transactionKey, with sequenceNumber 1..n.
- The event's fields are the object's fields except `IsDeleted`, `SystemModstamp` and derived (formula)
  fields ("StandardObjectNameChangeEvent", "Change Event Fields"); the record id is in `recordIds`. (The
  real org merges the same change to several records of one transaction into one event with several
  `recordIds`; the sandbox sends one event a record, a case every client handles.)
  A CREATE carries every non-null field; an UPDATE the changed fields' new values (the others null) and
  `LastModifiedDate`; a DELETE no field values. `changedFields` is empty except on an update.
- `changeOrigin` is `com/salesforce/api/<API_Name>/<API_Version>;client=<Client_ID>`, the client id being
  the `client` of the API call's `Sforce-Call-Options` header, and without `;client=` when the call set
  none (Apex reference, "ChangeEventHeader Class", changeorigin). A person's edit in Lightning Experience
  arrives as `com/salesforce/api/soap/62.0;client=SfdcInternalAPI/`. This module reads it from
  `change_context`, which the Salesforce front (`routes.SalesforceFront.handle`) opens for every REST call
  and `SalesforceState.update` (a person's edit) opens for the UI.
- The Pub/Sub API sends `changedFields`, `nulledFields` and `diffFields` as bitmaps: the first element a
  hexadecimal string whose bit i (least significant first) is the Avro schema's top-level field i, e.g.
  `['0x650004E0', '4-0x10']` (Pub/Sub API guide, "Event Deserialization Considerations";
  forcedotcom/pub-sub-api `python/util/ChangeEventHeaderUtility.py` decodes them). Opportunity has no
  compound field here, so only the first element is ever sent; `diffFields` is always empty (the sandbox
  sends whole values, never a text diff).
- Events are kept 72 hours ("Event Message Durability"); replay ids are opaque bytes, not contiguous in
  general (here: an 8-byte big-endian counter).

Memory and lifetime (sandbox decisions). The log belongs to the `Sandbox`, not to the seeded org: it outlives
`Sandbox.reset()` (like the HubSpot webhook subscriptions), so a subscriber keeps its stream and replay ids
across a reset; the reseeded records make no events. An event keeps only the changed values, in a slotted
object with shared name tuples (about 300 bytes for an update of seven fields), events older than the
retention window are pruned as the log is used, and at most `cap` events are kept (the oldest go first,
which a replay from them then sees as a gap). `SandboxOptions.salesforce_change_events=False` turns the log
off for benchmarks that never subscribe.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import threading
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from fastavro import parse_schema, schemaless_writer

from sandbox.clock import SandboxClock
from sandbox.salesforce.schema import FieldDef, ObjectSchema

TOPIC: Final = "/data/OpportunityChangeEvent"
ENTITY: Final = "Opportunity"
RETENTION_S: Final = 72 * 3600
DEFAULT_CAP: Final = 100_000
UI_ORIGIN: Final = "com/salesforce/api/soap/62.0;client=SfdcInternalAPI/"
CHANGE_TYPES: Final = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
)
EXCLUDED: Final = frozenset({"Id", "IsDeleted", "SystemModstamp"})
"""Object fields a change event does not carry (the id travels in `recordIds`)."""
_PRUNE_EVERY = 512
"""Appends prune every this many events (reads always prune): reading the clock on every save of a
100,000-record run costs more than the few stale events kept meanwhile."""
_DOUBLE = {"double", "currency", "percent"}


def encode_replay_id(position: int) -> bytes:
    return position.to_bytes(8, "big")


def decode_replay_id(raw: bytes) -> int | None:
    """The counter in a replay id, or None for bytes that are not one of ours."""
    return int.from_bytes(raw, "big") if len(raw) == 8 else None


def rest_origin(version: str, call_options: str | None) -> str:
    """`changeOrigin` of a REST call: `com/salesforce/api/rest/<version>[;client=<client>]`, the client
    taken from the `Sforce-Call-Options` header (`client=X`, options separated by commas)."""
    origin = f"com/salesforce/api/rest/{version}"
    for option in (call_options or "").split(","):
        key, _, value = option.strip().partition("=")
        if key.strip() == "client" and value.strip():
            return f"{origin};client={value.strip()}"
    return origin


@dataclass(slots=True)
class _Transaction:
    origin: str
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    sequence: int = 0
    commit_number: int | None = None


_CURRENT: ContextVar[_Transaction | None] = ContextVar("sandbox_cdc_transaction", default=None)


@contextlib.contextmanager
def change_context(origin: str) -> Iterator[None]:
    """Everything saved inside is one transaction with this `changeOrigin` (one transactionKey, sequence
    numbers 1..n). Nested contexts keep the outer transaction."""
    if _CURRENT.get() is not None:
        yield
        return
    token = _CURRENT.set(_Transaction(origin))
    try:
        yield
    finally:
        _CURRENT.reset(token)


@dataclass(frozen=True)
class EventSchema:
    """One version of the OpportunityChangeEvent Avro schema (it follows the org's Opportunity fields)."""

    schema_id: str
    schema_json: str
    parsed: Any
    names: tuple[str, ...]
    """Top-level field names, ChangeEventHeader first: bit i of a bitmap is names[i]."""
    position: Mapping[str, int]
    kinds: Mapping[str, str]
    """Avro value kind per record field: string, double, int, boolean, date, timestamp."""

    def bitmap(self, fields: tuple[str, ...]) -> list[str]:
        """The Pub/Sub API's bitmap of `fields` (empty list for none)."""
        bits = 0
        for name in fields:
            index = self.position.get(name)
            if index is not None:
                bits |= 1 << index
        if not bits:
            return []
        return ["0x" + bits.to_bytes((bits.bit_length() + 7) // 8, "big").hex().upper()]

    def fields_of(self, bitmap: list[str]) -> list[str]:
        """Field names a bitmap names (the inverse of `bitmap`, for tests and tools)."""
        if not bitmap or not bitmap[0].startswith("0x"):
            return []
        bits = int(bitmap[0][2:], 16)
        return [name for i, name in enumerate(self.names) if bits >> i & 1]


def _avro_type(spec: FieldDef) -> tuple[object, str]:
    if spec.type == "boolean":
        return "boolean", "boolean"
    if spec.type in _DOUBLE:
        return "double", "double"
    if spec.type == "int":
        return "int", "int"
    if spec.type == "date":
        return {"type": "int", "logicalType": "date"}, "date"
    if spec.type == "datetime":
        return {"type": "long", "logicalType": "timestamp-millis"}, "timestamp"
    return "string", "string"


def build_schema(schema: ObjectSchema) -> EventSchema:
    """The Avro schema of `<Object>ChangeEvent` for the object's fields as they stand now."""
    header = {
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": {"type": "array", "items": "string"}},
            {
                "name": "changeType",
                "type": {
                    "type": "enum",
                    "name": "ChangeType",
                    "namespace": "com.sforce.eventbus",
                    "symbols": list(CHANGE_TYPES),
                },
            },
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": {"type": "array", "items": "string"}},
            {"name": "diffFields", "type": {"type": "array", "items": "string"}},
            {"name": "changedFields", "type": {"type": "array", "items": "string"}},
        ],
    }
    fields: list[dict[str, object]] = [
        {"name": "ChangeEventHeader", "type": header, "doc": "Data:ComplexValueType"}
    ]
    kinds: dict[str, str] = {}
    for spec in schema.fields.values():
        if spec.name in EXCLUDED:
            continue
        avro, kind = _avro_type(spec)
        kinds[spec.name] = kind
        fields.append({"name": spec.name, "type": ["null", avro], "default": None})
    document = {
        "type": "record",
        "name": f"{schema.name}ChangeEvent",
        "namespace": "com.sforce.eventbus",
        "fields": fields,
    }
    text = json.dumps(document, separators=(",", ":"))
    digest = hashlib.sha256(text.encode()).digest()[:16]
    schema_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    names = tuple(str(f["name"]) for f in fields)
    return EventSchema(
        schema_id=schema_id,
        schema_json=text,
        parsed=parse_schema(document),
        names=names,
        position={name: i for i, name in enumerate(names)},
        kinds=kinds,
    )


class ChangeEvent:
    """One retained change event: the header's facts and the values of the fields it carries. Slotted, with
    the transaction, the field-name tuple and the commit time shared with other events and the record."""

    __slots__ = (
        "at",
        "change_type",
        "fields",
        "record_id",
        "replay",
        "schema_id",
        "sequence",
        "txn",
        "user",
        "values",
    )

    def __init__(
        self,
        replay: int,
        record_id: str,
        change_type: str,
        txn: _Transaction,
        at: datetime,
        user: str,
        schema_id: str,
        fields: tuple[str, ...],
        values: tuple[object, ...],
    ) -> None:
        self.replay = replay
        self.record_id = record_id
        self.change_type = change_type
        self.txn = txn
        self.sequence = txn.sequence
        self.at = at
        self.user = user
        self.schema_id = schema_id
        self.fields = fields
        self.values = values

    @property
    def replay_id(self) -> bytes:
        return encode_replay_id(self.replay)

    @property
    def origin(self) -> str:
        return self.txn.origin

    @property
    def transaction_key(self) -> str:
        return self.txn.key

    @property
    def commit_number(self) -> int:
        return self.txn.commit_number or self.replay

    @property
    def at_ms(self) -> int:
        """commitTimestamp: epoch milliseconds of the save (sandbox clock)."""
        return int(self.at.timestamp() * 1000)


def _avro_value(kind: str, value: object) -> object:
    if value is None:
        return None
    if kind == "double":
        return float(value)  # type: ignore[arg-type]
    if kind == "int":
        return int(value)  # type: ignore[call-overload]
    if kind == "boolean":
        return bool(value)
    if kind in {"date", "timestamp"}:
        if kind == "date" and isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return None
    return str(value)


class ChangeLog:
    """The org's OpportunityChangeEvent stream: appended by `SalesforceState`, read by the Pub/Sub server.

    `cond` is notified on every append (and by `wake`), so subscribers wait on it instead of polling.
    """

    def __init__(self, clock: SandboxClock, enabled: bool = True, cap: int = DEFAULT_CAP) -> None:
        self._clock = clock
        self.enabled = enabled
        self.cap = cap
        self.cond = threading.Condition()
        self._events: deque[ChangeEvent] = deque()
        self._last = 0
        """The replay counter of the newest event ever appended."""
        self._floor = 0
        """The replay counter of the newest event pruned (0: none ever was)."""
        self._schemas: dict[str, EventSchema] = {}
        self._current: EventSchema | None = None
        self._source: ObjectSchema | None = None
        self._names: dict[tuple[str, ...], tuple[str, ...]] = {}

    # ----- the schema --------------------------------------------------------------------------------------
    def attach(self, schema: ObjectSchema) -> None:
        """Follow this Opportunity schema (a reset builds a new org)."""
        with self.cond:
            self._source = schema
            self._current = None

    def schema_changed(self) -> None:
        """The Opportunity fields changed (added, deleted, renamed, restored): a new schema id from now on."""
        with self.cond:
            self._current = None

    def current_schema(self) -> EventSchema:
        with self.cond:
            if self._current is None:
                if self._source is None:
                    raise RuntimeError("the change log follows no Opportunity schema yet")
                built = build_schema(self._source)
                self._current = self._schemas.setdefault(built.schema_id, built)
            return self._current

    def schema(self, schema_id: str) -> EventSchema | None:
        with self.cond:
            return self._schemas.get(schema_id)

    # ----- appending (callers hold the org's lock) ----------------------------------------------------------
    def record_create(self, rec: Mapping[str, object], user: str | None) -> None:
        if not self.enabled:
            return
        schema = self.current_schema()
        names = tuple(n for n in schema.kinds if rec.get(n) is not None)
        self._append("CREATE", rec, user, schema, names)

    def record_update(
        self, rec: Mapping[str, object], before: Mapping[str, object], user: str | None
    ) -> None:
        """`before` holds the old values of every field the save may have changed."""
        if not self.enabled:
            return
        schema = self.current_schema()
        kinds, position = schema.kinds, schema.position
        changed = [
            n for n, old in before.items() if n in kinds and (n == "LastModifiedDate" or old != rec.get(n))
        ]
        changed.sort(key=position.__getitem__)
        self._append("UPDATE", rec, user, schema, tuple(changed))

    def record_delete(self, rec: Mapping[str, object], user: str | None) -> None:
        if not self.enabled:
            return
        self._append("DELETE", rec, user, self.current_schema(), ())

    def _append(
        self,
        change_type: str,
        rec: Mapping[str, object],
        user: str | None,
        schema: EventSchema,
        names: tuple[str, ...],
    ) -> None:
        shared = self._names.setdefault(names, names)
        values = tuple(rec.get(n) for n in shared)
        stamp = rec.get("LastModifiedDate")
        at = stamp if isinstance(stamp, datetime) and change_type != "DELETE" else self._clock.now()
        txn = _CURRENT.get() or _Transaction("")
        with self.cond:
            self._last += 1
            txn.sequence += 1
            if txn.commit_number is None:
                txn.commit_number = self._last
            event = ChangeEvent(
                self._last,
                str(rec["Id"]),
                change_type,
                txn,
                at,
                user or "",
                schema.schema_id,
                shared,
                values,
            )
            self._events.append(event)
            while len(self._events) > self.cap:
                self._floor = self._events.popleft().replay
            if self._last % _PRUNE_EVERY == 0:
                self._prune_locked()
            self.cond.notify_all()

    # ----- reading --------------------------------------------------------------------------------------
    @property
    def last(self) -> int:
        """The replay counter of the newest event (0 before any)."""
        with self.cond:
            return self._last

    def earliest_position(self) -> int:
        """The position just before the oldest retained event (EARLIEST starts after it)."""
        with self.cond:
            self._prune_locked()
            return self._events[0].replay - 1 if self._events else self._last

    def valid_position(self, position: int) -> bool:
        """True when a subscription may resume after `position`: an event still retained, or the start of a
        stream that never lost anything."""
        with self.cond:
            self._prune_locked()
            if position == 0 and self._floor == 0:
                return True
            if not self._events:
                return False
            first = self._events[0].replay
            return first <= position <= self._last and self._find(position) is not None

    def after(self, position: int, limit: int) -> list[ChangeEvent]:
        """Up to `limit` retained events after `position`, oldest first (callers may hold `cond`)."""
        with self.cond:
            self._prune_locked()
            events = self._events
            if not events or limit <= 0:
                return []
            start = self._index_after(position)
            return [events[i] for i in range(start, min(len(events), start + limit))]

    def events(self) -> list[ChangeEvent]:
        """Every retained event, oldest first."""
        with self.cond:
            self._prune_locked()
            return list(self._events)

    def expire_events(self) -> int:
        """Drop every retained event, as if 72 hours had passed: a replay id saved before is now outside the
        retention window. Returns how many were dropped."""
        with self.cond:
            dropped = len(self._events)
            if self._events:
                self._floor = self._events[-1].replay
            self._events.clear()
            self.cond.notify_all()
            return dropped

    def wake(self) -> None:
        """Wake every waiting subscriber (a fault changed, the server is stopping)."""
        with self.cond:
            self.cond.notify_all()

    def encode(self, event: ChangeEvent) -> bytes:
        """The event's Avro payload (schemaless binary) in the schema of its time."""
        schema = self.schema(event.schema_id)
        if schema is None:
            raise KeyError(event.schema_id)
        updated = event.change_type == "UPDATE"
        nulled = tuple(n for n, v in zip(event.fields, event.values, strict=True) if v is None)
        record: dict[str, object] = dict.fromkeys(schema.kinds)
        for name, value in zip(event.fields, event.values, strict=True):
            kind = schema.kinds.get(name)
            if kind is not None:
                record[name] = _avro_value(kind, value)
        record["ChangeEventHeader"] = {
            "entityName": ENTITY,
            "recordIds": [event.record_id],
            "changeType": event.change_type,
            "changeOrigin": event.origin,
            "transactionKey": event.transaction_key,
            "sequenceNumber": event.sequence,
            "commitTimestamp": event.at_ms,
            "commitNumber": event.commit_number,
            "commitUser": event.user,
            "nulledFields": schema.bitmap(nulled) if updated else [],
            "diffFields": [],
            "changedFields": schema.bitmap(event.fields) if updated else [],
        }
        buffer = io.BytesIO()
        schemaless_writer(buffer, schema.parsed, record)
        return buffer.getvalue()

    # ----- internals ------------------------------------------------------------------------------------
    def _prune_locked(self) -> None:
        cutoff = self._clock.now() - timedelta(seconds=RETENTION_S)
        events = self._events
        while events and events[0].at < cutoff:
            self._floor = events.popleft().replay

    def _index_after(self, position: int) -> int:
        """Index of the first retained event whose replay is greater than `position` (replays increase)."""
        events = self._events
        low, high = 0, len(events)
        while low < high:
            mid = (low + high) // 2
            if events[mid].replay <= position:
                low = mid + 1
            else:
                high = mid
        return low

    def _find(self, position: int) -> ChangeEvent | None:
        index = self._index_after(position) - 1
        if 0 <= index < len(self._events) and self._events[index].replay == position:
            return self._events[index]
        return None
