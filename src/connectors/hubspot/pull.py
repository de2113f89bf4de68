"""Reading open deals through CRM search without ever asking for a result past HubSpot's 10,000 cap.

HubSpot's search pages hold at most 200 results and paging stops at 10,000 results: a request whose `after`
reaches it gets HTTP 400 (https://developers.hubspot.com/docs/api/crm/search#limitations). So we sort by
`hs_lastmodifieddate` ascending and, before the next page would cross the cap, start a new window at the
newest timestamp seen (`GTE`), dropping ids already delivered. If an entire window shares one timestamp
(a bulk import), that timestamp is swept on its own, sorted by `hs_object_id` and re-anchored on the id.

Every sweep has an upper bound fixed when it starts: our own write-backs bump `hs_lastmodifieddate`, and
without the bound a sweep would chase the deals it just wrote. Search also lags recent writes by up to
minutes, which the caller covers by starting the window `overlap` before its cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from connectors.hubspot.mapping import epoch_millis


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    properties: dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Window:
    """One search query. `at` pins one timestamp (tie sweep, sorted by id, re-anchored on `id_after`)."""

    since: datetime | None = None
    until: datetime | None = None
    at: datetime | None = None
    id_after: str | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[Record, ...]
    next_offset: int | None


SearchFn = Callable[[Window], Result]


class Sweeper:
    """Walks every record matching the base filters between `since` and `until`, oldest first.

    `search(window)` runs one query; `modified_of(record)` reads its modified timestamp.
    """

    def __init__(
        self,
        search: SearchFn,
        page_size: int,
        cap: int,
        modified_of: Callable[[Record], datetime | None],
    ) -> None:
        self._search = search
        self._modified_of = modified_of
        self._page_size = page_size
        self._cap = cap
        self.requests = 0
        self.max_offset_requested = 0

    def _run(self, window: Window) -> Result:
        if window.offset + self._page_size > self._cap:
            raise AssertionError("sweep would request past the search result cap")
        self.requests += 1
        self.max_offset_requested = max(self.max_offset_requested, window.offset + self._page_size)
        return self._search(window)

    def sweep(self, since: datetime | None, until: datetime | None) -> Iterator[list[Record]]:
        """Yield pages of records not yet seen in this sweep, in ascending modified order."""
        seen: set[str] = set()
        window = Window(since=since, until=until)
        while True:
            result = self._run(window)
            fresh = [r for r in result.records if r.id not in seen]
            seen.update(r.id for r in fresh)
            if fresh:
                yield fresh
            if result.next_offset is None or not result.records:
                return
            if result.next_offset + self._page_size <= self._cap:
                window = replace(window, offset=result.next_offset)
                continue
            newest = self._modified_of(result.records[-1])
            if newest is None:
                raise ValueError("a search result has no modified timestamp to re-anchor on")
            if newest == window.since:
                yield from self._tie_sweep(newest, until, seen)
                window = Window(since=newest + timedelta(milliseconds=1), until=until)
            else:
                window = Window(since=newest, until=until)

    def _tie_sweep(self, at: datetime, until: datetime | None, seen: set[str]) -> Iterator[list[Record]]:
        """Every record modified exactly at `at`, by ascending id, re-anchored on the last id seen."""
        window = Window(at=at, until=until)
        while True:
            result = self._run(window)
            fresh = [r for r in result.records if r.id not in seen]
            seen.update(r.id for r in fresh)
            if fresh:
                yield fresh
            if result.next_offset is None or not result.records:
                return
            if result.next_offset + self._page_size <= self._cap:
                window = replace(window, offset=result.next_offset)
            else:
                window = Window(at=at, until=until, id_after=result.records[-1].id)


def search_body(
    window: Window,
    base_filters: Sequence[dict[str, Any]],
    properties: Sequence[str],
    page_size: int,
    modified: str,
) -> dict[str, Any]:
    """The JSON of one `POST /crm/v3/objects/deals/search` for this window."""
    filters = list(base_filters)
    if window.at is not None:
        filters.append({"propertyName": modified, "operator": "EQ", "value": epoch_millis(window.at)})
        if window.id_after is not None:
            filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": window.id_after})
        sort = "hs_object_id"
    else:
        if window.since is not None:
            filters.append({"propertyName": modified, "operator": "GTE", "value": epoch_millis(window.since)})
        sort = modified
    if window.until is not None:
        filters.append({"propertyName": modified, "operator": "LTE", "value": epoch_millis(window.until)})
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": page_size,
    }
    if window.offset:
        body["after"] = str(window.offset)
    return body
