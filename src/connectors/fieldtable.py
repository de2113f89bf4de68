"""The declarative CRM mapping: one table per CRM (canonical field -> CRM name and codec), read and written
by one generic reader (`read_deal`) and one generic writer (`write_status`).

A codec is a CRM's pair of conversions for one kind of canonical value (text, date, `;`-list, ...): each CRM
declares its `Codec` per kind (built on `connectors.codecs`), and `build_table` turns a connection's
canonical -> CRM-name mapping into a `FieldTable`. Canonical names outside `KINDS` are custom fields, read
into `Deal.extra` as they come.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from connectors.model import StatusWrite
from rules.model import Deal, DealFlags, Value

__all__ = ["KINDS", "OUTPUTS", "Codec", "FieldSpec", "FieldTable", "build_table", "read_deal", "write_status"]

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
}
"""Canonical field -> the kind of codec it is read and written with. Any other name is a custom field."""

OUTPUTS: tuple[str, ...] = ("status", "missing", "score", "checked_at", "flagged_since")
"""The canonical fields a StatusWrite sets, in write order."""

CUSTOM = "raw"


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


def read_deal(
    get: Callable[[str], object], table: FieldTable, deal_id: str, modified: datetime | None
) -> Deal:
    """The canonical Deal of one record: `get(crm_name)` is the record's value of a field (it may raise for
    a field the record lacks); a canonical field the table does not map is None."""

    def value(canonical: str) -> Any:
        spec = table.get(canonical)
        return None if spec is None else spec.codec.decode(get(spec.crm_name))

    flags = DealFlags(
        status=value("status"),
        missing=value("missing"),
        score=value("score"),
        checked_at=value("checked_at"),
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
        extra={s.canonical: cast(Value, s.codec.decode(get(s.crm_name))) for s in table.custom},
    )


def write_status(write: StatusWrite, table: FieldTable) -> dict[str, Any]:
    """CRM field -> encoded value for the output fields one StatusWrite sets, in `OUTPUTS` order."""
    canonical: dict[str, str | tuple[str, ...] | int | datetime | date | None] = {
        "status": write.status.value,
        "missing": tuple(write.missing),
        "score": write.score,
        "checked_at": write.checked_at,
        "flagged_since": write.flagged_since,
    }
    out: dict[str, Any] = {}
    for key in OUTPUTS:
        spec = table.get(key)
        if spec is not None:
            out[spec.crm_name] = spec.codec.encode(canonical[key])
    return out
