"""Closed opportunities with their qualification fields as they were at the entry point, from field history.

Salesforce keeps a row per change of a *tracked* field in `OpportunityFieldHistory` (`OldValue`,
`NewValue`, `CreatedDate`; a `Field = 'created'` row at creation) and the stage path in
`OpportunityHistory` (a row at creation and per change of stage, amount, close date or probability; Object
Reference, "OpportunityFieldHistory", "OpportunityHistory"). Which fields are tracked is read from
`FieldDefinition.IsFieldHistoryTracked` (Object Reference, "FieldDefinition").

One read of closed deals (`HistoryWindow`):

    FieldDefinition (1 call) -> Opportunity, IsClosed and CloseDate in the window (ceil(N/2000) pages)
    -> per page, per 200 ids: OpportunityFieldHistory of the tracked criterion fields (ceil(N/200)),
       and OpportunityHistory rows of the entry stage when the window names one (ceil(N/200))

A query travels in the GET URL, capped at 16,384 bytes (REST API Developer Guide, "Limits"): 200 ids keep
it near 5 KB, as the task lookups do. A history query whose rows pass 2,000 pages on, one more call each.

The value at the entry point is the value at close with every change made after entry undone, newest
first (each undone change gives back its `OldValue`). The record so rebuilt is read by the same
`OpportunityReader` as open deals, so values decode the same way. A criterion field stands at its value at
close, named in `fallback_fields`, when history cannot give it: the field is not tracked, the
FieldDefinition read was refused, or the field is set but the deal has neither a change of it nor a
'created' row (history was not on when the deal was made).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from simple_salesforce.format import format_soql

from connectors.codecs import parse_date, parse_datetime
from connectors.errors import ConfigurationError
from connectors.model import ClosedDeal, HistoryWindow
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.pull import OpportunityReader
from rules.model import Deal

log = structlog.get_logger()

PAGE = 2000
"""Closed opportunities per query page (the most a REST query page carries)."""
CHUNK = 200
"""Opportunity ids per history query: the URL stays far below 16,384 bytes."""
CRITERIA = ("budget", "authority", "need", "timing")
"""Canonical criterion fields rebuilt from history (custom fields mapped in `fields` too)."""
CREATED = "created"


@dataclass(frozen=True, slots=True)
class _Change:
    field: str
    """The changed field, lower-cased."""
    old: Any
    at: datetime


def _ids(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r["Id"]) for r in records]


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _moment(raw: Any) -> datetime:
    moment = parse_datetime(str(raw))
    if moment is None:
        raise ValueError(f"no datetime in {raw!r}")
    return moment


class HistoryReader:
    """Reads one window of closed deals; `targets` are canonical -> describe name of the fields rebuilt."""

    def __init__(
        self,
        client: SalesforceClient,
        reader: OpportunityReader,
        field_map: Mapping[str, str],
        custom_fields: Mapping[str, str],
        types: Mapping[str, str],
    ) -> None:
        self.client = client
        self.reader = reader
        described = {name.lower(): name for name in types}
        mapped = {k: v for k, v in field_map.items() if k in CRITERIA or k == "stage"}
        mapped.update(custom_fields)
        self.targets = {k: described.get(v.lower(), v) for k, v in mapped.items()}
        self.columns = tuple(dict.fromkeys((*reader.columns, "IsWon", "CloseDate", "CreatedDate")))

    # ----- the reads ------------------------------------------------------------------------------------
    def tracked(self) -> frozenset[str]:
        """The target fields whose history the org tracks (lower-cased); none when the org refuses the
        FieldDefinition read (an integration user without access to setup metadata)."""
        soql = format_soql(
            "SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition "
            "WHERE EntityDefinitionId = 'Opportunity' AND QualifiedApiName IN {}",
            sorted(set(self.targets.values())),
        )
        try:
            return frozenset(
                str(r["QualifiedApiName"]).lower()
                for r in self.client.query(soql)
                if r.get("IsFieldHistoryTracked") is True
            )
        except ConfigurationError as error:
            log.warning(
                "salesforce FieldDefinition read refused; values at close stand in for every criterion",
                error=str(error),
            )
            return frozenset()

    def closed_soql(self, window: HistoryWindow) -> str:
        # A format_soql template: the dates are ISO literals (SOQL date literals are unquoted).
        return format_soql(
            "SELECT {:literal} FROM Opportunity WHERE IsClosed = true AND CloseDate >= {:literal} "
            "AND CloseDate <= {:literal} ORDER BY CloseDate ASC, Id ASC",
            ", ".join(self.columns),
            window.closed_from.isoformat(),
            window.closed_to.isoformat(),
        )

    def changes(self, ids: Sequence[str], fields: Iterable[str]) -> dict[str, list[_Change]]:
        """Field history rows of these opportunities for these fields (plus 'created'), by opportunity,
        oldest first."""
        names = sorted({*fields, CREATED})
        found: dict[str, list[_Change]] = defaultdict(list)
        for chunk in _chunks(ids):
            soql = format_soql(
                "SELECT OpportunityId, Field, OldValue, CreatedDate FROM OpportunityFieldHistory "
                "WHERE OpportunityId IN {} AND Field IN {} ORDER BY CreatedDate ASC",
                chunk,
                names,
            )
            for row in self.client.query(soql, batch_size=PAGE):
                change = _Change(str(row["Field"]).lower(), row.get("OldValue"), _moment(row["CreatedDate"]))
                found[str(row["OpportunityId"])[:15]].append(change)
        for rows in found.values():
            rows.sort(key=lambda c: c.at)
        return found

    def entries(self, ids: Sequence[str], stage: str) -> dict[str, datetime]:
        """When each opportunity first entered `stage` (OpportunityHistory), for those that ever did."""
        first: dict[str, datetime] = {}
        for chunk in _chunks(ids):
            soql = format_soql(
                "SELECT OpportunityId, CreatedDate FROM OpportunityHistory "
                "WHERE OpportunityId IN {} AND StageName = {} ORDER BY CreatedDate ASC",
                chunk,
                stage,
            )
            for row in self.client.query(soql, batch_size=PAGE):
                key, at = str(row["OpportunityId"])[:15], _moment(row["CreatedDate"])
                if key not in first or at < first[key]:
                    first[key] = at
        return first

    # ----- the whole read -------------------------------------------------------------------------------
    def closed_deals(self, window: HistoryWindow) -> Iterator[list[ClosedDeal]]:
        tracked = self.tracked()
        page: list[dict[str, Any]] = []
        for record in self.client.query(self.closed_soql(window), batch_size=PAGE):
            page.append(record)
            if len(page) == PAGE:
                yield self._page(page, window, tracked)
                page = []
        if page:
            yield self._page(page, window, tracked)

    def _page(
        self, records: list[dict[str, Any]], window: HistoryWindow, tracked: frozenset[str]
    ) -> list[ClosedDeal]:
        ids = _ids(records)
        rebuilt = {k: v for k, v in self.targets.items() if k != "stage" or window.entry_stage is None}
        fields = [name for name in rebuilt.values() if name.lower() in tracked]
        changes = self.changes(ids, fields) if fields else {}
        entries = self.entries(ids, window.entry_stage) if window.entry_stage is not None else {}
        out: list[ClosedDeal] = []
        for record in records:
            key = str(record["Id"])[:15]
            if window.entry_stage is None:
                entered: datetime | None = _moment(record["CreatedDate"])
            else:
                entered = entries.get(key)
            closed = self._closed(record, rebuilt, tracked, changes.get(key, []), entered, window)
            if closed is not None:
                out.append(closed)
        return out

    def _closed(
        self,
        record: dict[str, Any],
        rebuilt: Mapping[str, str],
        tracked: frozenset[str],
        changes: list[_Change],
        entered: datetime | None,
        window: HistoryWindow,
    ) -> ClosedDeal | None:
        at_entry = dict(record)
        fallback: list[str] = []
        if entered is not None:
            has_created = any(c.field == CREATED for c in changes)
            for canonical, name in rebuilt.items():
                own = [c for c in changes if c.field == name.lower()]
                if name.lower() not in tracked or (
                    not own and not has_created and record.get(name) not in (None, "")
                ):
                    fallback.append(canonical)
                    continue
                for change in reversed(own):
                    if change.at <= entered:
                        break
                    at_entry[name] = change.old
            stage = self.targets.get("stage")
            if window.entry_stage is not None and stage is not None:
                at_entry[stage] = window.entry_stage
        read = self.reader.read(at_entry)
        if not isinstance(read, Deal):
            log.warning("salesforce closed deal left out: a value cannot be read", detail=read.message)
            return None
        closed_on = parse_date(str(record["CloseDate"]))
        assert closed_on is not None
        return ClosedDeal(read, record.get("IsWon") is True, closed_on, entered, tuple(fallback))
