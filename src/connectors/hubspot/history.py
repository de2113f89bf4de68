"""Closed deals with their qualification as it was at the entry point, from HubSpot's property history.

Two reads (docs/design.md §5, "closed-deal history"):

1. **Which deals.** CRM search for `hs_is_closed` EQ true with `closedate` GTE/LTE the window (epoch ms, UTC
   days), 200 a page, sorted by `hs_object_id` and keyed on it: each search asks for the ids after the last
   one seen, from its first result, so HubSpot's 10,000-result search cap is never reached and N closed
   deals take exactly ceil(N/200) searches. (Sorting by close date instead, as the open-deal pull sorts by
   modified date, spends extra searches on ties: close dates are usually midnight, and a few hundred deals
   sharing one took 1,341 searches for 100,000 deals where 500 do.) Closed deals do not change while a
   report reads them, so no overlap or re-anchoring is needed. Search offers no history, so it asks only
   for ids.
2. **What they held.** `POST /crm/v3/objects/deals/batch/read` with `propertiesWithHistory` naming the
   criterion properties and `dealstage`: at most 50 inputs when history is asked for (HubSpot answers more
   with 400 "The maximum number of inputs supported in a batch request for property histories is 50"; the
   objects API spec: history "will reduce the maximum number of objects that can be read by a single
   request"). Ids are gathered across search pages so every read but the last is full.

Each property's history is a list of `{value, timestamp, sourceType, ...}`, newest first; a cleared value
is `""`. The value at a moment is the newest entry at or before it (none: the property had no value yet).
The entry moment is `createdate` (no entry stage), else the first entry of `dealstage` equal to the window's
entry stage (None when the deal never got there: it is still yielded, with its values at close). A property
with a current value and no history at all is read at close and named in `fallback_fields`.
Values go through the open-deal read (`to_deal`, the connection's field table), so "TBC", dates and
numbers read the same as on an open deal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import structlog

from connectors.fieldtable import DECODE_ERRORS, FieldTable, UnreadableValue
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.mapping import epoch_millis, parse_datetime, to_deal
from connectors.hubspot.pull import FIRST_PAGE, Result, next_after, records_of, require_properties
from connectors.hubspot.ratelimit import OTHER, SEARCH
from connectors.model import ClosedDeal, HistoryWindow

log = structlog.get_logger()

HISTORY_BATCH = 50
"""Inputs of one `batch/read` that asks for `propertiesWithHistory` (HubSpot's cap)."""
CREATED = "createdate"
WON = "hs_is_closed_won"


@dataclass(frozen=True, slots=True)
class Change:
    """One history entry: the value a property took (None when cleared) and when."""

    at: datetime
    value: str | None


def changes(raw: object) -> list[Change]:
    """One property's `propertiesWithHistory` list, oldest first (HubSpot sends it newest first; sorted
    here rather than trusted). An entry whose timestamp cannot be read is left out."""
    out: list[Change] = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, Mapping):
            continue
        try:
            at = parse_datetime(entry.get("timestamp"))
        except DECODE_ERRORS:
            continue
        if at is None:
            continue
        value = entry.get("value")
        out.append(Change(at, str(value) if value not in (None, "") else None))
    out.sort(key=lambda c: c.at)
    return out


def value_at(history: Sequence[Change], moment: datetime) -> str | None:
    """The value of the newest entry at or before `moment` (oldest-first `history`); None before the first."""
    value = None
    for change in history:
        if change.at > moment:
            break
        value = change.value
    return value


def entered(stage_history: Sequence[Change], stage: str) -> datetime | None:
    """When the deal first took `stage`; None if it never did."""
    return next((c.at for c in stage_history if c.value == stage), None)


def closed_bounds(window: HistoryWindow) -> tuple[datetime, datetime]:
    """The window's close dates as UTC instants: from the first day's midnight to the last day's end."""
    since = datetime.combine(window.closed_from, time.min, tzinfo=UTC)
    until = datetime.combine(window.closed_to + timedelta(days=1), time.min, tzinfo=UTC)
    return since, until - timedelta(milliseconds=1)


@dataclass(frozen=True)
class HistoryRead:
    """What one closed-deal read needs from the connection: its field table and property names."""

    table: FieldTable
    mapping: Mapping[str, str]
    criteria: tuple[str, ...]
    """Canonical fields read at the entry point (BANT inputs and any custom field the mapping adds)."""

    @property
    def history_names(self) -> list[str]:
        names = [self.mapping[c] for c in (*self.criteria, "stage")]
        return list(dict.fromkeys(names))

    def reconstruct(self, record: Mapping[str, Any], window: HistoryWindow) -> ClosedDeal | None:
        """One `batch/read` result as a ClosedDeal; None (logged) when its values cannot be read."""
        deal_id = str(record.get("id"))
        props: dict[str, str | None] = dict(record.get("properties") or {})
        raw_history = record.get("propertiesWithHistory") or {}
        history = {name: changes(raw_history.get(name)) for name in self.history_names}
        try:
            created = parse_datetime(props.get(CREATED) or record.get("createdAt"))
        except DECODE_ERRORS:
            created = None
        stage = window.entry_stage
        entered_at = created if stage is None else entered(history[self.mapping["stage"]], stage)
        values = dict(props)
        fallback: list[str] = []
        if entered_at is not None:
            for canonical in (*self.criteria, "stage"):
                name = self.mapping[canonical]
                if history[name]:
                    values[name] = value_at(history[name], entered_at)
                elif props.get(name) not in (None, ""):
                    fallback.append(canonical)
        try:
            deal = to_deal(deal_id, values, self.table)
        except UnreadableValue as exc:
            log.warning(
                "hubspot closed deal left out: a value cannot be read", deal_id=deal_id, error=str(exc)
            )
            return None
        if deal.close_date is None:
            log.warning("hubspot closed deal left out: no close date", deal_id=deal_id)
            return None
        won = (props.get(WON) or "").strip().lower() == "true"
        return ClosedDeal(deal, won, deal.close_date, entered_at, tuple(fallback))


def closed_ids(search: Callable[[str | None], Result]) -> Iterator[list[str]]:
    """Every closed deal's id, a search page at a time: `search(after_id)` is one search for the ids after
    `after_id` (None: from the first), in id order."""
    after: str | None = None
    while True:
        result = search(after)
        ids = [r.id for r in result.records]
        if ids:
            yield ids
        if not result.has_more or not ids:
            return
        after = ids[-1]


def closed_deals(
    search: Callable[[str | None], Result],
    read: Callable[[Sequence[str]], Iterable[Mapping[str, Any]]],
    history: HistoryRead,
    window: HistoryWindow,
) -> Iterator[list[ClosedDeal]]:
    """The window's closed deals, `HISTORY_BATCH` a batch: `search(after_id)` is one closed-deal search (see
    `closed_ids`), `read(ids)` one `batch/read` with history."""
    pending: list[str] = []
    for ids in closed_ids(search):
        pending.extend(ids)
        while len(pending) >= HISTORY_BATCH:
            batch, pending = pending[:HISTORY_BATCH], pending[HISTORY_BATCH:]
            yield _batch(read(batch), history, window)
    if pending:
        yield _batch(read(pending), history, window)


class HistoryReader:
    """The two reads over the client seam (pacing, retries, the error tree): closed-deal searches and
    `batch/read` with history."""

    def __init__(self, client: HubSpotClient, history: HistoryRead, page_size: int) -> None:
        self._client = client
        self._history = history
        self._page_size = page_size
        mapping = history.mapping
        self._closed = {"propertyName": mapping["is_closed"], "operator": "EQ", "value": "true"}
        self._close_name = mapping["close_date"]

    def closed_deals(self, window: HistoryWindow, properties: Sequence[str]) -> Iterator[list[ClosedDeal]]:
        """The window's closed deals with `properties` (the mapped ones, checked for drift) at entry."""
        wanted = sorted({*properties, CREATED, WON})

        def read(ids: Sequence[str]) -> list[dict[str, Any]]:
            return self._read(ids, wanted, properties)

        since, until = closed_bounds(window)

        def search(after_id: str | None) -> Result:
            return self._search(since, until, after_id)

        return closed_deals(search, read, self._history, window)

    def _search(self, since: datetime, until: datetime, after_id: str | None) -> Result:
        """One closed-deal search: the ids after `after_id` (search has no history)."""
        filters = [
            self._closed,
            {"propertyName": self._close_name, "operator": "GTE", "value": epoch_millis(since)},
            {"propertyName": self._close_name, "operator": "LTE", "value": epoch_millis(until)},
        ]
        if after_id is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": after_id})
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["hs_object_id"],
            "limit": self._page_size,
            "after": FIRST_PAGE,
        }
        response = self._client.call_json(SEARCH, "deals_search", "do_search", body, expect="results")
        return Result(records_of(response), next_after(response) is not None)

    def _read(self, ids: Sequence[str], wanted: list[str], checked: Sequence[str]) -> list[dict[str, Any]]:
        """One `batch/read` with history; a deal gone since the search is left out of the 207's results."""
        body = {
            "inputs": [{"id": deal_id} for deal_id in ids],
            "properties": wanted,
            "propertiesWithHistory": self._history.history_names,
        }
        response = self._client.call_json(
            OTHER, "deals_batch", "read", body, archived="false", expect="results"
        )
        require_properties(records_of(response), checked, self._history.mapping)
        return list(response.get("results") or [])


def _batch(
    records: Iterable[Mapping[str, Any]], history: HistoryRead, window: HistoryWindow
) -> list[ClosedDeal]:
    out = (history.reconstruct(record, window) for record in records)
    return [deal for deal in out if deal is not None]
