"""The declarative CRM mapping: one table per CRM (canonical field -> CRM name and codec), read and written
by generic readers and writers: `read_deal` and `write_status` for deals, `read_task` and `write_task` for
follow-up tasks.

A codec is a CRM's pair of conversions for one kind of canonical value (text, date, `;`-list, ...): each CRM
declares its `Codec` per kind (built on `connectors.codecs`), and `build_table` turns a connection's
canonical -> CRM-name mapping into a `FieldTable`. Canonical names outside `KINDS` are custom fields, read
into `Deal.extra` as they come. A task table (`build_task_table`) maps each `TaskField` the same way, plus
how the CRM says a task is open or completed (`TaskStates`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from connectors.model import CrmTask, StatusWrite, TaskAction, TaskField, TaskWrite, UnreadableDeal
from rules.errors import did_you_mean
from rules.model import Deal, DealFlags, Value

__all__ = [
    "KINDS",
    "OUTPUTS",
    "TASK_KINDS",
    "Codec",
    "FieldSpec",
    "FieldTable",
    "TaskStates",
    "TaskTable",
    "UnreadableValue",
    "build_table",
    "build_task_table",
    "decode_field",
    "mapping_problems",
    "read_deal",
    "read_task",
    "write_status",
    "write_task",
]

KINDS: dict[str, str] = {
    "name": "text",
    "owner_id": "id",
    "stage": "text",
    "pipeline": "text",
    "deal_type": "text",
    "amount": "number",
    "close_date": "date",
    "budget": "raw",
    "authority": "raw",
    "need": "raw",
    "timing": "raw",
    "modified_at": "datetime",
    "is_closed": "raw",
    "flagged_since": "date",
    "status": "id",
    "missing": "list",
    "score": "int",
    "checked_at": "datetime",
    "reasons": "text",
    "snooze_until": "date",
    "snooze_reason": "text",
    "modified_by": "id",
}
"""Canonical field -> the kind of codec it is read and written with. Any other name is a custom field."""

OUTPUTS: tuple[str, ...] = ("status", "missing", "score", "checked_at", "flagged_since", "reasons")
"""The canonical fields a StatusWrite sets, in write order."""

CUSTOM = "raw"

TASK_KINDS: dict[TaskField, str] = {
    TaskField.SUBJECT: "text",
    TaskField.DESCRIPTION: "text",
    TaskField.PRIORITY: "priority",
    TaskField.DUE: "due",
    TaskField.OWNER: "id",
    TaskField.KEY: "text",
}
"""Task field -> the kind of codec it is read and written with (each CRM's codecs include `priority`, its
priority scale, and `due`, how it holds a due date)."""

_TASK_READS = (TaskField.KEY, TaskField.SUBJECT, TaskField.DUE, TaskField.OWNER, TaskField.PRIORITY)
"""The task fields a lookup reads: what the worker compares against a person's edits (not the body)."""


DECODE_ERRORS = (ValueError, ArithmeticError, TypeError)
"""What a codec raises for a value it cannot decode (OverflowError and decimal errors: ArithmeticError)."""


class UnreadableValue(Exception):
    """A record's value that its field's codec cannot decode; the connector reports the deal as an
    `UnreadableDeal` instead of failing the run."""

    def __init__(self, field: str, crm_field: str, raw: object, reason: str) -> None:
        super().__init__(f"{crm_field} ({field}): {reason}")
        self.field = field
        self.crm_field = crm_field
        self.raw = raw
        self.reason = reason

    def for_deal(self, deal_id: str, modified_at: datetime | None = None) -> UnreadableDeal:
        shown = repr(self.raw)
        shown = shown if len(shown) <= 80 else shown[:79] + "…"
        return UnreadableDeal(deal_id, self.field, self.crm_field, shown, self.reason, modified_at)


def decode_field(spec: FieldSpec, get: Callable[[str], object]) -> Any:
    """`spec`'s value of one record, decoded; UnreadableValue when the value cannot be. A field the record
    lacks (`get` raising KeyError) is schema drift, not a bad value, and propagates as it is."""
    raw: object = None
    try:
        raw = get(spec.crm_name)
        return spec.codec.decode(raw)
    except DECODE_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise UnreadableValue(spec.canonical, spec.crm_name, raw, reason) from None


@dataclass(frozen=True, slots=True)
class Codec:
    """One CRM's conversions for one kind of value: `decode` a CRM value, `encode` a canonical one."""

    decode: Callable[[Any], Any]
    encode: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One row of a CRM's table: a canonical field, the CRM field holding it and its codec."""

    canonical: str
    crm_name: str
    codec: Codec
    custom: bool = False
    """A custom field, read into `Deal.extra` under its canonical name."""


@dataclass(frozen=True, slots=True)
class FieldTable:
    """A CRM's declared mapping, in configuration order (custom fields keep their order in `extra`)."""

    specs: tuple[FieldSpec, ...]

    def __iter__(self) -> Iterator[FieldSpec]:
        return iter(self.specs)

    def get(self, canonical: str) -> FieldSpec | None:
        """The row of a canonical field, None when the CRM does not map it."""
        return next((s for s in self.specs if s.canonical == canonical and not s.custom), None)

    @property
    def custom(self) -> tuple[FieldSpec, ...]:
        """The rows of custom fields, read into `Deal.extra`."""
        return tuple(s for s in self.specs if s.custom)


def build_table(
    mapping: Mapping[str, str], codecs: Mapping[str, Codec], extra: Mapping[str, str] | None = None
) -> FieldTable:
    """The table of a canonical -> CRM-name mapping, each field with the CRM's codec for its kind; a name
    outside `KINDS`, and every name in `extra`, is a custom field."""
    specs = [FieldSpec(k, n, codecs[KINDS.get(k, CUSTOM)], k not in KINDS) for k, n in mapping.items()]
    specs.extend(FieldSpec(k, n, codecs[CUSTOM], True) for k, n in (extra or {}).items())
    return FieldTable(tuple(specs))


def mapping_problems(
    fields: Mapping[str, str], mapped: Collection[str], crm: str, setting: str = "fields"
) -> list[str]:
    """Every problem with a connection's `fields` table, each as "<setting>.<key>: <what to do>": a
    canonical key this CRM does not map, a name a near-miss of a canonical key (refused: a typo would
    otherwise become a custom field no criterion reads), a key mapped to an empty name."""
    problems: list[str] = []
    for key in sorted((set(fields) - set(mapped)) & set(KINDS)):
        problems.append(
            f"{setting}.{key}: not mapped on {crm}; canonical keys: {', '.join(mapped)} "
            "(any other name is a custom field)"
        )
    for key in sorted(set(fields) - set(KINDS)):
        hint = did_you_mean(key, mapped, cutoff=0.8)
        if hint:
            problems.append(
                f"{setting}.{key}: unknown key{hint}; a custom field needs a name that is not a near-miss "
                "of a canonical one"
            )
    for key in sorted(k for k, v in fields.items() if not v.strip()):
        problems.append(f"{setting}.{key}: maps to an empty field name")
    return problems


def read_deal(
    get: Callable[[str], object], table: FieldTable, deal_id: str, modified: datetime | None
) -> Deal:
    """The canonical Deal of one record: `get(crm_name)` is the record's value of a field (it may raise for
    a field the record lacks); a canonical field the table does not map is None. UnreadableValue names the
    first field whose value cannot be decoded."""

    def value(canonical: str) -> Any:
        spec = table.get(canonical)
        return None if spec is None else decode_field(spec, get)

    flags = DealFlags(
        status=value("status"),
        missing=value("missing"),
        score=value("score"),
        checked_at=value("checked_at"),
        reasons=value("reasons"),
    )
    return Deal(
        id=deal_id,
        name=value("name"),
        owner_id=value("owner_id"),
        stage=value("stage"),
        pipeline=value("pipeline"),
        deal_type=value("deal_type"),
        amount=value("amount"),
        close_date=value("close_date"),
        budget=value("budget"),
        authority=value("authority"),
        need=value("need"),
        timing=value("timing"),
        modified_at=modified,
        flagged_since=value("flagged_since"),
        flags=flags,
        snooze_until=value("snooze_until"),
        snooze_reason=value("snooze_reason"),
        modified_by=value("modified_by"),
        extra={s.canonical: cast(Value, decode_field(s, get)) for s in table.custom},
    )


def write_status(write: StatusWrite, table: FieldTable) -> dict[str, Any]:
    """CRM field -> encoded value for the output fields one StatusWrite sets, in `OUTPUTS` order."""
    canonical: dict[str, str | tuple[str, ...] | int | datetime | date | None] = {
        "status": write.status.value,
        "missing": tuple(write.missing),
        "score": write.score,
        "checked_at": write.checked_at,
        "flagged_since": write.flagged_since,
        "reasons": write.reasons,
    }
    out: dict[str, Any] = {}
    for key in OUTPUTS:
        spec = table.get(key)
        if spec is not None:
            out[spec.crm_name] = spec.codec.encode(canonical[key])
    return out


@dataclass(frozen=True, slots=True)
class TaskStates:
    """How a CRM says whether a task is open: the field a write sets and its two values, and the field a
    lookup reads with the test of its value (Salesforce reads `IsClosed`, which also covers an org's own
    closed statuses; HubSpot reads the status it writes)."""

    field: str
    open: str
    completed: str
    read_field: str
    is_open: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class TaskTable:
    """A CRM's follow-up task mapping: every `TaskField` -> its field and codec, the open/completed states,
    and the constant fields a create sets besides (HubSpot's task type)."""

    specs: tuple[FieldSpec, ...]
    states: TaskStates
    on_create: tuple[tuple[str, str], ...] = ()

    def spec(self, field: TaskField) -> FieldSpec:
        return next(s for s in self.specs if s.canonical == field.value)

    def name(self, field: TaskField) -> str:
        """The CRM's name of a task field (the key field is the connection's setting)."""
        return self.spec(field).crm_name

    @property
    def read_names(self) -> tuple[str, ...]:
        """The CRM fields a lookup by key reads."""
        return (*(self.name(f) for f in _TASK_READS), self.states.read_field)


def build_task_table(
    names: Mapping[TaskField, str],
    codecs: Mapping[str, Codec],
    states: TaskStates,
    on_create: Mapping[str, str] | None = None,
) -> TaskTable:
    """The task table of a CRM's TaskField -> field-name mapping, each with the CRM's codec for its kind.
    Every `TaskField` must be named."""
    missing = [f.value for f in TaskField if f not in names]
    if missing:
        raise ValueError(f"task table names no field for {', '.join(missing)}")
    specs = tuple(FieldSpec(f.value, names[f], codecs[TASK_KINDS[f]]) for f in TaskField)
    return TaskTable(specs, states, tuple((on_create or {}).items()))


def _task_value(write: TaskWrite, field: TaskField) -> Any:
    return {
        TaskField.SUBJECT: write.subject,
        TaskField.DESCRIPTION: write.description,
        TaskField.PRIORITY: write.priority,
        TaskField.DUE: write.due,
        TaskField.OWNER: write.owner_id,
        TaskField.KEY: write.sync_key,
    }[field]


def write_task(write: TaskWrite, table: TaskTable) -> dict[str, Any]:
    """CRM field -> encoded value for one TaskWrite. A create sets every field, open, plus the table's
    `on_create`; an update writes only `write.fields`, a reopen those and the open state, a complete those
    and the completed state. A field whose value is empty (a deal without owner) is left out."""
    if write.action is TaskAction.CREATE:
        fields: frozenset[TaskField] = frozenset(TaskField)
    else:
        fields = write.fields
    out: dict[str, Any] = {}
    for spec in table.specs:
        field = TaskField(spec.canonical)
        if field not in fields:
            continue
        value = spec.codec.encode(_task_value(write, field))
        if value is not None and value != "":
            out[spec.crm_name] = value
    if write.action in (TaskAction.CREATE, TaskAction.REOPEN):
        out[table.states.field] = table.states.open
    elif write.action is TaskAction.COMPLETE:
        out[table.states.field] = table.states.completed
    if write.action is TaskAction.CREATE:
        out.update(table.on_create)
    return out


def read_task(get: Callable[[str], object], table: TaskTable, task_id: str) -> CrmTask:
    """The CrmTask of one task record found by key: `get(crm_name)` is the record's value of a field."""

    def value(field: TaskField) -> Any:
        spec = table.spec(field)
        return spec.codec.decode(get(spec.crm_name))

    return CrmTask(
        task_id=task_id,
        sync_key=str(get(table.name(TaskField.KEY))),
        is_open=table.states.is_open(get(table.states.read_field)),
        subject=value(TaskField.SUBJECT),
        due=value(TaskField.DUE),
        owner_id=value(TaskField.OWNER),
        priority=value(TaskField.PRIORITY),
    )
