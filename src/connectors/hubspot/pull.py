"""Reading open deals: changes through CRM search without ever asking for a result past HubSpot's 10,000 cap,
and full sweeps through whichever of search and the list endpoint reads faster at the portal's limits.

HubSpot's search pages hold at most 200 results and paging stops at 10,000 results: a request whose `after`
reaches it gets HTTP 400 (https://developers.hubspot.com/docs/api/crm/search#limitations). Offset paging is
also unsafe while we write: each status write-back bumps `hs_lastmodifieddate` and moves the deal out of
the window, shifting every later offset so whole pages would be skipped. So every page is a fresh window
anchored on the newest timestamp seen (`GTE`, sorted ascending, `after` always "0"), dropping ids already
delivered — the window is re-anchored long before 10,000. If a full page shares the anchor timestamp (a
bulk import), that timestamp is swept on its own, sorted by `hs_object_id` and anchored on the id.

Every sweep has an upper bound fixed when it starts, so it never chases the deals it just wrote. Search
also lags recent writes by up to minutes, which the caller covers by starting `overlap` before its cursor.

A full sweep needs no modified-time window, so it may read through `GET /crm/v3/objects/deals` instead
(`list_sweep`): 100 deals a call (the endpoint's maximum `limit`), paged with `paging.next.after`, paced only
by the burst limit (per 10 s), where search is also held to its per-second limit. `list_sweep_faster` picks
the endpoint from the limits, three one-result searches counting the portal's open deals, all its deals
and the open deals bant-sync has not judged yet (their writes share the burst window), made only when
`list_reads_faster` says the limits could favour the list endpoint at all, and the round trip of the first
`LIST_PROBE` list pages.
The list endpoint returns every unarchived deal, closed ones included, so `is_open` keeps the ones the
search filter keeps (`is_closed` NEQ "true").

Every response is checked for schema drift. HubSpot answers each requested property that exists (null when
the record has no value) and silently leaves out one that does not: "If any of the specified properties are
not present on the requested object(s), they will be ignored" (CRM objects API spec, HubSpot/HubSpot-public-
api-spec-collection, the `properties` parameter of the read and list endpoints; the search request's
`properties` is documented only as "a list of property names to include in the response"). A property
deleted after preflight would otherwise read as empty and flag every deal, so a requested property missing
from any result stops the run before the page holding that result is handed on (docs/design.md §6).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.errors import SchemaDriftError
from connectors.hubspot.mapping import epoch_millis, missing_properties


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
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Result:
    records: tuple[Record, ...]
    has_more: bool
    total: int | None = None
    """The search answer's `total`: how many records match the query (None when it carries none)."""


SearchFn = Callable[[Window], Result]


class Sweeper:
    """Walks every record matching the base filters between `since` and `until`, oldest first.

    `search(window)` runs one query; `modified_of(record)` reads its modified timestamp.
    """

    def __init__(
        self,
        search: SearchFn,
        page_size: int,
        modified_of: Callable[[Record], datetime | None],
    ) -> None:
        self._search = search
        self._modified_of = modified_of
        self._page_size = page_size
        self.requests = 0

    def _run(self, window: Window) -> Result:
        self.requests += 1
        return self._search(window)

    def _fresh(self, window: Window, seen: set[str]) -> tuple[Result, list[Record]]:
        """Run one window; the records not delivered before in this sweep (now marked seen)."""
        result = self._run(window)
        fresh = [r for r in result.records if r.id not in seen]
        seen.update(r.id for r in fresh)
        return result, fresh

    def _last(self, result: Result) -> bool:
        return not result.has_more or len(result.records) < self._page_size

    def sweep(self, since: datetime | None, until: datetime | None) -> Iterator[list[Record]]:
        """Yield pages of records not yet seen in this sweep, in ascending modified order."""
        seen: set[str] = set()
        window = Window(since=since, until=until)
        while True:
            result, fresh = self._fresh(window, seen)
            if fresh:
                yield fresh
            if self._last(result):
                return
            newest = self._modified_of(result.records[-1])
            if newest is None:
                raise ValueError("a search result has no modified timestamp to anchor the next page on")
            if newest == window.since and len(fresh) < self._page_size // 2:
                yield from self._tie_sweep(newest, until, seen)
                window = Window(since=newest + timedelta(milliseconds=1), until=until)
                continue
            at_newest = [r.id for r in result.records if self._modified_of(r) == newest]
            if newest == window.since:
                at_newest = [*window.exclude, *at_newest]
            exclude = tuple(at_newest) if len(at_newest) <= MAX_EXCLUDE else ()
            window = Window(since=newest, until=until, exclude=exclude)

    def _tie_sweep(self, at: datetime, until: datetime | None, seen: set[str]) -> Iterator[list[Record]]:
        """Every record modified exactly at `at`, by ascending id, each page anchored on the last id."""
        window = Window(at=at, until=until)
        while True:
            result, fresh = self._fresh(window, seen)
            if fresh:
                yield fresh
            if self._last(result):
                return
            window = Window(at=at, until=until, id_after=result.records[-1].id)


LIST_PAGE = 100
"""The list endpoint's maximum `limit` (`GET /crm/v3/objects/deals`, CRM objects API spec)."""


@dataclass(frozen=True, slots=True)
class Listed:
    """One list page: every deal it holds (open and closed) and `paging.next.after` (None on the last)."""

    records: tuple[Record, ...]
    after: str | None


ListFn = Callable[[str | None], Listed]

LIST_PROBE = 3
"""List pages read and timed before a full sweep commits to listing (their shortest round trip is the one
the list chain is weighed with); they start the sweep when it lists."""


def list_sweep(list_page: ListFn) -> Iterator[Listed]:
    """Every page of the list endpoint, following `paging.next.after` (never `paging.next.link`, which a
    client would have to trust to keep `limit` and `properties`) until a page has none."""
    after: str | None = None
    while True:
        listed = list_page(after)
        yield listed
        if listed.after is None:
            return
        if listed.after == after:
            raise ValueError(f"the list endpoint answered `after={after}` with the same cursor again")
        after = listed.after


def is_open(record: Record, is_closed: str) -> bool:
    """The search filter's test (`is_closed` NEQ "true") applied to one listed record."""
    return (record.properties.get(is_closed) or "").lower() != "true"


def list_reads_faster(burst_per_10s: int, search_per_second: int, search_page: int) -> bool:
    """Whether the list endpoint reads more deals per second than search at these limits.

    Every call counts against the burst limit, searches also against the per-second search limit
    (https://developers.hubspot.com/docs/api/usage-details), so the list endpoint reads
    `LIST_PAGE * burst / 10` deals a second and search `search_page * min(search, burst / 10)`.
    """
    return list_sweep_faster(1, 1, burst_per_10s, search_per_second, search_page, calls=False)


def list_sweep_faster(
    open_deals: int,
    all_deals: int,
    burst_per_10s: int,
    search_per_second: int,
    search_page: int,
    *,
    writes: int = 0,
    latency: float = 0.0,
    calls: bool = True,
) -> bool:
    """Whether listing all `all_deals` (the list endpoint cannot leave closed deals out) ends sooner than
    searching the `open_deals`, at these limits, with `writes` more calls of the same run sharing the burst
    window and `latency` seconds a round trip; with `calls` the reads are counted in whole calls.

    A portal whose closed deals outnumber its open ones is swept faster by search, and so is one whose
    sweep will write most deals (a first run): a search reads 200 deals for one burst slot, a list call
    100, so when the writes fill the burst window search leaves them more room. Each read waits for the
    one before it (the next list page's `after` comes in the answer; a search is anchored on the last
    one), so a sweep also takes its read calls times the round trip, and a slot is held for its window
    plus the round trip (HubSpot counts a call on arrival). From round trips of about 0.1 s, list calls
    that wait for each other read 100 deals no faster than searches at 5/s read 200. Listing must end
    `LIST_MARGIN` sooner: the model leaves out the time a list page waits to be handed to the worker.
    """
    list_calls = math.ceil(all_deals / LIST_PAGE) if calls else all_deals / LIST_PAGE
    search_calls = math.ceil(open_deals / search_page) if calls else open_deals / search_page
    burst_s = (10 + latency) / burst_per_10s
    list_seconds = max((list_calls + writes) * burst_s, list_calls * latency)
    search_seconds = max(
        search_calls * (1 + latency) / search_per_second,
        (search_calls + writes) * burst_s,
        search_calls * latency,
    )
    return list_seconds < search_seconds * LIST_MARGIN


LIST_MARGIN = 0.9
"""A full sweep lists only when the model says that ends at least 10% sooner than searching (measured at
10,000 deals and 0.1 s round trips: a list chain the model put level with searching took 1.2x as long)."""


def expected_writes(unjudged: int) -> int:
    """Calls a sweep's writes will take for `unjudged` open deals that carry no bant-sync status yet: each
    gets a status write and may get a task, 100 a batch. Deals already judged are mostly unchanged."""
    return 2 * math.ceil(unjudged / 100)


BATCH_READ = 100
"""Ids in one `POST /crm/v3/objects/deals/batch/read` (HubSpot's cap on a batch read's inputs)."""


def batch_read_body(deal_ids: Sequence[str], properties: Sequence[str]) -> dict[str, Any]:
    """The JSON of one `batch/read` of these deals (at most BATCH_READ) with `properties`."""
    if not 0 < len(deal_ids) <= BATCH_READ:
        raise ValueError(f"a batch read names 1 to {BATCH_READ} ids, not {len(deal_ids)}")
    return {"inputs": [{"id": deal_id} for deal_id in deal_ids], "properties": list(properties)}


def count_body(filters: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A search answering only its `total`: how many deals match `filters` (all unarchived deals when
    there are none)."""
    groups = [{"filters": list(filters)}] if filters else []
    sorts = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    return {
        "filterGroups": groups,
        "sorts": sorts,
        "properties": ["hs_object_id"],
        "limit": 1,
        "after": FIRST_PAGE,
    }


FIRST_PAGE = "0"
"""Every search asks for its first page: a window is re-anchored rather than paged (see the module
docstring). HubSpot's spec marks `after` required, a string; "0" is the first result."""

MAX_EXCLUDE = 100
"""Ids already delivered at the anchor timestamp are excluded with one NOT_IN filter (HubSpot caps a filter's
`values` at 100), so a page is not spent re-reading them; past that, dedupe by id does the job."""


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
        if window.exclude:
            filters.append(
                {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": list(window.exclude)}
            )
        sort = modified
    if window.until is not None:
        filters.append({"propertyName": modified, "operator": "LTE", "value": epoch_millis(window.until)})
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": page_size,
        "after": FIRST_PAGE,
    }
    return body


def records_of(response: Mapping[str, Any]) -> tuple[Record, ...]:
    """The records of a search, list or batch answer (parsed JSON)."""
    return tuple(Record(str(r["id"]), dict(r.get("properties") or {})) for r in response.get("results") or [])


def next_after(response: Mapping[str, Any]) -> str | None:
    """`paging.next.after` of a search or list answer; None on the last page."""
    after = ((response.get("paging") or {}).get("next") or {}).get("after")
    return None if after is None else str(after)


def require_properties(
    records: Iterable[Record], requested: Sequence[str], mapping: Mapping[str, str]
) -> None:
    """Raise SchemaDriftError naming every requested property absent from any of `records`' properties."""
    wanted = frozenset(requested)
    missing: set[str] = set()
    for record in records:
        if not record.properties.keys() >= wanted:
            missing.update(missing_properties(record.properties, requested))
    if missing:
        raise drift_error(sorted(missing), mapping)


def drift_error(names: Sequence[str], mapping: Mapping[str, str]) -> SchemaDriftError:
    """The error for deal properties HubSpot stopped returning, each named with the setting it maps."""
    keys = {name: sorted(k for k, v in mapping.items() if v == name) for name in names}
    listing = ", ".join(f"{name} ({'/'.join(keys[name])})" if keys[name] else name for name in names)
    noun = "property" if len(names) == 1 else "properties"
    return SchemaDriftError(
        f"HubSpot stopped returning deal {noun} {listing} during the run (deleted, renamed or no longer "
        "readable by this app): the run stopped before writing the page that holds it, and no deal was "
        "flagged because of it. Restore the property in HubSpot (or run `bant-sync setup` for bant-sync's "
        "own properties), or fix the property mapping in the connection's settings; the next run resumes "
        "from the last checkpoint.",
        fields=tuple(names),
    )
