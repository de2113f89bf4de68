"""Reading open opportunities: SOQL built with `format_soql`, streamed with `query_all_iter`, translated
into Deals and cut into Pages that each carry the cursor to save after them.

Order is `(SystemModstamp, Id)`, so a cursor names one exact position and records sharing a stamp across
a page boundary are neither repeated nor skipped: one SOQL query serves the whole run from a server-side
locator snapshot (REST API Developer Guide, "Execute a SOQL Query": `nextRecordsUrl`), and a later run
restarts at the saved `(stamp, id)`. With an overlap window the next run re-reads the last few minutes
(late commits can carry an older stamp) and the worker's diff turns those re-reads into no writes.

Schema drift at any moment (docs/design.md §6): a query naming a field that no longer exists fails with
INVALID_FIELD (the client maps it to SchemaDriftError), and a record that lacks a selected field — a later
page of a query whose field was deleted after the query ran — stops the run too, before the page holding it
is handed on, instead of reading the field as empty and flagging the deal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from simple_salesforce.format import format_soql

from connectors.codecs import (
    format_millis,
    format_seconds,
    join_list,
    parse_date,
    parse_datetime,
    parse_number,
    split_list,
)
from connectors.errors import ConfigurationError, SchemaDriftError
from connectors.fieldtable import DECODE_ERRORS, Codec, FieldTable, UnreadableValue, build_table, read_deal
from connectors.model import Cursor, Page, UnreadableDeal
from rules.model import Deal, Value

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
IDS_PER_QUERY = 200
"""Ids in one `Id IN (...)` query of `fetch_many`: 200 18-character ids keep the query near 4,400
characters, well inside SOQL's 100,000 and a GET URL's 16,384, and one answer page (batch size >= 200)."""
Converter = Callable[[Any], Value]


def soql_datetime(moment: datetime, *, millis: bool = False) -> str:
    """A SOQL datetime literal in UTC with a `Z` (docs/design.md §6): floored to the second, or exact to the
    millisecond (the precision SystemModstamp is stored and returned with) when `millis`."""
    return format_millis(moment) if millis else format_seconds(moment)


def _as_date(value: Any) -> Value:
    return parse_date(value) if isinstance(value, str) and value else None


def _as_datetime(value: Any) -> Value:
    return parse_datetime(value) if isinstance(value, str) and value else None


def _as_plain(value: Any) -> Value:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _id(value: Value) -> str | None:
    return str(value) if value else None


def _list_text(parts: tuple[str, ...]) -> str | None:
    return join_list(parts) or None


CODECS: dict[str, Codec] = {
    "text": Codec(decode=lambda value: _text(value), encode=lambda value: value),
    "id": Codec(decode=_id, encode=lambda value: value),
    "number": Codec(decode=parse_number, encode=lambda value: value),
    "date": Codec(
        decode=lambda value: value if isinstance(value, date) else None,
        encode=lambda value: value.isoformat() if value else None,
    ),
    "datetime": Codec(
        decode=lambda value: value if isinstance(value, datetime) else None, encode=format_millis
    ),
    "list": Codec(decode=lambda value: split_list(None if value is None else str(value)), encode=_list_text),
    "int": Codec(
        decode=lambda value: int(value) if isinstance(value, int | float) else None,
        encode=lambda value: value,
    ),
    "raw": Codec(decode=lambda value: value, encode=lambda value: value),
    "priority": Codec(decode=lambda value: value or None, encode=lambda value: value),
    "due": Codec(decode=_as_date, encode=lambda value: value.isoformat()),
}
"""Salesforce's codec per kind of canonical field (`fieldtable.KINDS`, `fieldtable.TASK_KINDS`). Deal values
come already converted by the field's describe type (`CONVERTERS`): a date field is a date, a text field
stays text; task values come as JSON (`ActivityDate` a `YYYY-MM-DD` string)."""


def deal_table(field_map: Mapping[str, str], extra_fields: Mapping[str, str]) -> FieldTable:
    """Salesforce's field table: the canonical mapping, then the custom fields (read into `extra`)."""
    return _table(tuple(field_map.items()), tuple(extra_fields.items()))


@lru_cache(maxsize=32)
def _table(fields: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]) -> FieldTable:
    return build_table(dict(fields), CODECS, dict(extra))


CONVERTERS: dict[str, Converter] = {"date": _as_date, "datetime": _as_datetime}
"""Describe type -> converter from JSON; every other type passes through as str/number/bool/None."""


class OpportunityReader:
    """Builds the SOQL and turns records into Deals. `types` maps each field describe lists to its type.

    Field names compare case-insensitively in SOQL, but records carry each field under its describe name, so
    a configured name is read under the describe spelling (`bant_budget__c` as `BANT_Budget__c`)."""

    def __init__(
        self, field_map: Mapping[str, str], extra_fields: Mapping[str, str], types: Mapping[str, str]
    ):
        self.field_map = dict(field_map)
        self.extra_fields = dict(extra_fields)
        names = ["Id", "SystemModstamp", *self.field_map.values(), *self.extra_fields.values()]
        for name in names:
            if not _FIELD_NAME.match(name):
                raise ConfigurationError(f"field name {name!r} is not a Salesforce API name; fix `fields`")
        described = {k.lower(): k for k in types}
        self._key = {name: described.get(name.lower(), name) for name in names}
        self.columns = tuple(dict.fromkeys(self._key[name] for name in names))
        self._required = frozenset(self.columns)
        self.table = deal_table(self.field_map, self.extra_fields)
        lowered = {k.lower(): v for k, v in types.items()}
        self._convert = {
            name: CONVERTERS.get(lowered.get(name.lower(), ""), _as_plain) for name in self.columns
        }

    def soql(
        self,
        *,
        since: datetime | None = None,
        after: Cursor | None = None,
        owner_id: str | None = None,
        deal_id: str | None = None,
        deal_ids: Sequence[str] | None = None,
        count: bool = False,
    ) -> str:
        """`since`: stamp >= since, floored to the second (overlap mode); `after`: strictly after the
        (stamp, id) position, compared by the server itself so its Id ordering is the one that counts.
        `deal_ids`: only these ids (`Id IN (...)`; at most IDS_PER_QUERY of them).
        `count`: `SELECT COUNT()` under the same filter, unordered (its answer's `totalSize` is the number
        of records the query would return)."""
        clauses = ["IsClosed = false"]
        args: list[Any] = []
        if since is not None:
            clauses.append("SystemModstamp >= {:literal}")
            args.append(soql_datetime(since))
        if after is not None:
            clauses.append("(SystemModstamp > {:literal} OR (SystemModstamp = {:literal} AND Id > {}))")
            stamp = soql_datetime(after.modified_at, millis=True)
            args.extend([stamp, stamp, after.deal_id])
        if owner_id is not None:
            clauses.append("OwnerId = {}")
            args.append(owner_id)
        if deal_id is not None:
            clauses.append("Id = {}")
            args.append(deal_id)
        if deal_ids is not None:
            if not 0 < len(deal_ids) <= IDS_PER_QUERY:
                raise ValueError(f"a query names 1 to {IDS_PER_QUERY} ids, not {len(deal_ids)}")
            clauses.append("Id IN {}")
            args.append(list(deal_ids))
        # A format_soql template: every value in `args` is quoted and escaped by format_soql.
        where = " AND ".join(clauses)
        if count:
            return format_soql(f"SELECT COUNT() FROM Opportunity WHERE {where}", *args)  # noqa: S608
        order = "ORDER BY SystemModstamp ASC, Id ASC"
        template = f"SELECT {{:literal}} FROM Opportunity WHERE {where} {order}"  # noqa: S608
        return format_soql(template, ", ".join(self.columns), *args)

    def deal(self, record: Mapping[str, Any]) -> Deal:
        """The Deal of one record; SchemaDriftError when the record lacks a selected field, UnreadableValue
        naming a field whose value cannot be decoded."""
        if not record.keys() >= self._required:
            raise self._drift(tuple(c for c in self.columns if c not in record))
        return read_deal(
            lambda name: self._value(record, name),
            self.table,
            str(record["Id"]),
            self._modified(record),
        )

    def read(self, record: Mapping[str, Any]) -> Deal | UnreadableDeal:
        """The Deal of one record, or the UnreadableDeal saying which value could not be read."""
        try:
            return self.deal(record)
        except UnreadableValue as exc:
            try:
                modified = self._modified(record)
            except UnreadableValue:
                modified = None
            return exc.for_deal(str(record["Id"]), modified)

    def _modified(self, record: Mapping[str, Any]) -> datetime:
        raw = record["SystemModstamp"]
        try:
            moment = parse_datetime(str(raw))
        except DECODE_ERRORS as exc:
            raise UnreadableValue("modified_at", "SystemModstamp", raw, str(exc)) from None
        if moment is None:
            raise UnreadableValue("modified_at", "SystemModstamp", raw, "no modified time")
        return moment

    def _value(self, record: Mapping[str, Any], name: str) -> Value:
        key = self._key[name]
        return self._convert[key](record[key])

    def _drift(self, names: tuple[str, ...]) -> SchemaDriftError:
        settings = {**self.field_map, **self.extra_fields}
        keys = {n: sorted(k for k, v in settings.items() if self._key[v] == n) for n in names}
        listing = ", ".join(
            f"Opportunity.{n} ({'/'.join(keys[n])})" if keys[n] else f"Opportunity.{n}" for n in names
        )
        return SchemaDriftError(
            f"Salesforce stopped returning {listing} during the run (deleted, renamed or hidden from the "
            "integration user by field-level security): the run stopped before writing the page that holds "
            "it, and no deal was flagged because of it. Run `bant-sync setup --check`, restore the field or "
            "redeploy config/salesforce and grant field access to the integration user, or fix `fields` in "
            "the connection's settings; the next run resumes from the last checkpoint.",
            tuple(f"Opportunity.{n}" for n in names),
        )


def _text(value: Value) -> str | None:
    return None if value is None else str(value)


def paginate(
    read: Iterable[Deal | UnreadableDeal], page_size: int, floor: Cursor | None = None
) -> Iterator[Page]:
    """Cut a (stamp, id)-ordered stream into Pages; each page's cursor is its last deal, never below `floor`
    (the cursor the read started from: overlap re-reads must not move it back). Deals seen twice (an
    overlap re-read, or a record a locator served again) are dropped by id. Unreadable deals ride along in
    their page and move its cursor like any other."""
    seen: set[str] = set()
    batch: list[Deal | UnreadableDeal] = []
    for item in read:
        key = item.id if isinstance(item, Deal) else item.deal_id
        if key in seen:
            continue
        seen.add(key)
        batch.append(item)
        if len(batch) >= page_size:
            page = _page(batch, floor)
            floor = page.cursor
            yield page
            batch = []
    if batch:
        yield _page(batch, floor)


def _page(batch: list[Deal | UnreadableDeal], floor: Cursor | None) -> Page:
    deals = tuple(d for d in batch if isinstance(d, Deal))
    unreadable = tuple(d for d in batch if isinstance(d, UnreadableDeal))
    stamps = [Cursor(d.modified_at, d.id) for d in deals if d.modified_at is not None]
    stamps += [Cursor(u.modified_at, u.deal_id) for u in unreadable if u.modified_at is not None]
    cursor = max(stamps) if stamps else None
    if cursor is None or floor is None:
        return Page(deals, cursor or floor, unreadable)
    return Page(deals, max(cursor, floor), unreadable)


def since_for(cursor: Cursor, overlap: timedelta) -> datetime:
    return cursor.modified_at - overlap
