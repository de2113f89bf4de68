"""The HubSpot connector: the Connector protocol over the client seam, pull, write-back and tasks."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from connectors.errors import ConfigurationError, SchemaDriftError
from connectors.fieldtable import DECODE_ERRORS, UnreadableValue
from connectors.hubspot.auth import token_source
from connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from connectors.hubspot.history import HistoryRead, HistoryReader
from connectors.hubspot.mapping import deal_table, parse_datetime, status_properties, to_deal
from connectors.hubspot.owners import read_owners
from connectors.hubspot.preflight import preflight
from connectors.hubspot.pull import (
    BATCH_READ,
    LIST_PAGE,
    LIST_PROBE,
    Listed,
    Record,
    Result,
    Sweeper,
    Window,
    batch_read_body,
    count_body,
    expected_writes,
    is_open,
    list_reads_faster,
    list_sweep,
    list_sweep_faster,
    next_after,
    records_of,
    require_properties,
    search_body,
)
from connectors.hubspot.ratelimit import OTHER, SEARCH, RateLimiter
from connectors.hubspot.settings import DEFAULT_PROPERTIES, INPUT_KEYS, HubSpotSettings
from connectors.hubspot.setup import setup
from connectors.hubspot.tasks import TaskWriter
from connectors.hubspot.write import batch_update
from connectors.model import (
    Capabilities,
    ClosedDeal,
    CrmTask,
    Cursor,
    HistoryWindow,
    OutcomeKind,
    Owner,
    Page,
    RowOutcome,
    SetupReport,
    UnreadableDeal,
    WritePlan,
    WriteTarget,
)
from connectors.registry import ConnectorContext
from connectors.request_settings import retry_policy
from rules.model import Deal

log = structlog.get_logger()


class HubSpotConnector:
    """One HubSpot account. `sdk` is injectable for tests that build the SDK client themselves."""

    name = "hubspot"
    capabilities = Capabilities(prefetch=True, status_batch=100, task_batch=100)
    """The SDK's urllib3 pool, the pacing limiter and the call counter are thread-safe: the worker may read
    the next page while this one is written. Batch endpoints take at most 100 inputs."""

    def __init__(self, settings: HubSpotSettings, context: ConnectorContext, sdk: Any | None = None) -> None:
        self.settings = settings
        self._context = context
        self._mapping = settings.props
        self._table = deal_table(self._mapping)
        policy = retry_policy(settings, context.sleep)
        self.limiter = _shared_limiter(settings, context)
        self.client = HubSpotClient(settings, None, policy, self.limiter, sdk=sdk, clock=context.clock)
        self.client.tokens = token_source(
            settings.auth,
            settings.client_id,
            context.secrets,
            self.client.exchange_refresh_token,
            context.clock,
            settings.refresh_margin_seconds,
        )
        self.tasks = TaskWriter(self.client, settings.task_key_property)
        self._portal_id: str | None = None
        self._ui_domain: str | None = None
        self.last_sweep: Sweeper | None = None
        self._properties = sorted(set(self._mapping.values()))
        self._open_filter = {"propertyName": self._mapping["is_closed"], "operator": "NEQ", "value": "true"}
        self._primed: tuple[Window, Result] | None = None
        """The first search of the next change sweep, read early by `expected_total` for its `total`."""
        self._open_deals: int | None = None
        """The open deals `expected_total` counted for a full sweep (it counts them to pick its endpoint)."""

    @property
    def api_calls(self) -> int:
        return self.client.calls

    def preflight(self) -> None:
        self.tasks.association_type_id = preflight(self.client, self.settings)
        if self._portal_id is None:
            self._portal_id = self._read_portal_id()

    def _read_portal_id(self) -> str:
        """The portal's id (Account Information API; any token of the portal may read it), and the host of
        its HubSpot app (`uiDomain`: app.hubspot.com, or app-eu1.hubspot.com in the EU data centre)."""
        details = self.client.call_json("other", "account_info", "details")
        portal = details.get("portalId")
        if portal is None:
            raise ConfigurationError("HubSpot's account details carry no portalId; check the access token")
        ui_domain = details.get("uiDomain")
        self._ui_domain = str(ui_domain) if ui_domain else None
        return str(portal)

    def record_url(self, deal_id: str) -> str:
        """The deal's page in HubSpot (`/contacts/<portal id>/record/0-3/<deal id>`), on the portal's own app
        host: the account details' `uiDomain`, else app-eu1.hubspot.com when the connection's `host` is the
        EU data centre's API (api-eu1.hubapi.com), else app.hubspot.com. Known after preflight."""
        if self._portal_id is None:
            self._portal_id = self._read_portal_id()
        host = ui_host(self._ui_domain, self.settings.host)
        return f"https://{host}/contacts/{self._portal_id}/record/0-3/{deal_id}"

    def closed_deals(self, window: HistoryWindow) -> Iterator[list[ClosedDeal]]:
        """The deals closed in the window with their criteria as they were at the entry point, 50 a batch:
        closed-deal searches (200 a page), then `batch/read` with property history (50 a call)
        (connectors/hubspot/history.py). Budget: ceil(N/200) searches + ceil(N/50) reads."""
        mapping = self._mapping
        criteria = (*INPUT_KEYS, *(k for k in mapping if k not in DEFAULT_PROPERTIES))
        reader = HistoryReader(
            self.client, HistoryRead(self._table, mapping, criteria), self.settings.page_size
        )
        return reader.closed_deals(window, self._properties)

    @property
    def identity(self) -> str:
        """`hubspot:<portal id>` (known after preflight)."""
        if self._portal_id is None:
            self._portal_id = self._read_portal_id()
        return f"hubspot:{self._portal_id}"

    @property
    def field_names(self) -> Mapping[str, str]:
        return dict(self._mapping)

    def find_tasks(self, keys: Sequence[str]) -> dict[str, CrmTask]:
        """The bant-sync tasks this portal holds under these sync keys."""
        return self.tasks.find(keys) if keys else {}

    def owners(self) -> list[Owner]:
        """Every active owner of the portal (owners API, paged)."""
        return read_owners(self.client)

    def setup(self, check_only: bool = False, create_inputs: bool = False) -> SetupReport:
        """Create bant-sync's property group and output properties (a second run changes nothing) and
        check the input ones, creating them with their types when `create_inputs`; `check_only` changes
        nothing and reports what is missing."""
        if not check_only:
            made = setup(self.client, self.settings, create_inputs)
            return SetupReport(made.created, made.existing, made.problems)
        try:
            association = preflight(self.client, self.settings)
        except SchemaDriftError as exc:
            return SetupReport(problems=(str(exc),))
        return SetupReport(
            ok=(
                "every mapped deal property and the task key property exist and are writable",
                f"tasks associate to deals with type {association}",
            )
        )

    def _modified_of(self, record: Record) -> datetime | None:
        """The record's modified time; None when unreadable (such a record anchors no search window)."""
        try:
            return parse_datetime(record.properties.get(self._mapping["modified_at"]))
        except DECODE_ERRORS:
            return None

    def _read(self, record: Record) -> Deal | UnreadableDeal:
        try:
            return to_deal(record.id, record.properties, self._table)
        except UnreadableValue as exc:
            return exc.for_deal(record.id, self._modified_of(record))

    def _search(self, window: Window, filters: Sequence[dict[str, Any]]) -> Result:
        body = search_body(
            window,
            [self._open_filter, *filters],
            self._properties,
            self.settings.page_size,
            self._mapping["modified_at"],
        )
        response = self.client.call_json(SEARCH, "deals_search", "do_search", body, expect="results")
        records = records_of(response)
        require_properties(records, self._properties, self._mapping)
        total = response.get("total")
        return Result(records, next_after(response) is not None, None if total is None else int(total))

    def _list(self, after: str | None) -> Listed:
        """One `GET /crm/v3/objects/deals` page of every mapped property, paced by the burst limit only."""
        query: dict[str, Any] = {"limit": LIST_PAGE, "properties": self._properties}
        if after is not None:
            query["after"] = after
        response = self.client.call_json(OTHER, "deals_basic", "get_page", expect="results", **query)
        records = records_of(response)
        require_properties(records, self._properties, self._mapping)
        return Listed(records, next_after(response))

    def _pages(self, since: Any, filters: Sequence[dict[str, Any]]) -> Iterator[Page]:
        scoped = list(filters)
        primed, self._primed = self._primed, None
        if primed is not None and (scoped or primed[0].since != since):
            primed = None
        until = primed[0].until if primed is not None else self._context.clock()

        def search(window: Window) -> Result:
            nonlocal primed
            if primed is not None and window == primed[0]:
                result, primed = primed[1], None
                return result
            return self._search(window, scoped)

        sweeper = Sweeper(search, self.settings.page_size, self._modified_of)
        self.last_sweep = sweeper
        batch: list[Deal | UnreadableDeal] = []
        for records in sweeper.sweep(since, until):
            batch.extend(self._read(r) for r in records)
            if len(batch) >= self.settings.deals_per_page - self.settings.page_size:
                yield _page(batch)
                batch = []
        if batch:
            yield _page(batch)

    def _listed_pages(self, listed_pages: Iterable[Listed], start: datetime) -> Iterator[Page]:
        """Every open deal of these list pages, in the endpoint's order (not by modified time).

        Only the last page carries a cursor: the newest modified time read, bounded by the sweep's start
        `start`. A page out of modified order marks no position in the change stream, so a sweep that stops
        early leaves the saved cursor where it was. The bound is what keeps deals changed during the sweep:
        every deal that exists at `start` is listed after it, so every change made by then is read; a change
        after `start` is stamped after the cursor, so the next incremental run, which searches from the
        cursor minus the overlap (the same overlap that covers search lag), reads it — whether the list
        passed that deal before the change or after it. Without the bound a deal listed early and changed
        early in a long sweep could fall more than the overlap behind a cursor set by a deal changed late.
        """
        bound = Cursor(start, "")
        newest: Cursor | None = None
        batch: list[Deal | UnreadableDeal] = []
        for listed in listed_pages:
            fresh = [self._read(r) for r in listed.records if is_open(r, self._mapping["is_closed"])]
            if fresh and len(batch) >= self.settings.deals_per_page - LIST_PAGE:
                page = _page(batch)
                newest = _later(newest, page.cursor)
                yield replace(page, cursor=None)
                batch = []
            batch.extend(fresh)
        if not batch:
            return
        page = _page(batch)
        newest = _later(newest, page.cursor)
        yield replace(page, cursor=min(newest, bound) if newest else None)

    def _full_pages(self) -> Iterator[Page]:
        """All open deals, through whichever endpoint ends the sweep sooner (decided on the reading
        thread, when the first page is asked for)."""
        start = self._context.clock()
        listed = self._listing()
        if listed is None:
            yield from self._pages(None, [])
        else:
            yield from self._listed_pages(listed, start)

    def _listing(self) -> Iterator[Listed] | None:
        """The list pages of this sweep when listing ends it sooner than searching, else None.

        Three one-result searches count the open deals, all deals and the open deals without a status
        (their writes share the burst window). When those favour listing, the first LIST_PROBE list pages
        are read and timed: each page waits for the one before, so the shortest of their round trips
        decides whether the list chain still ends sooner. Those pages start the sweep, or, when searching
        ends sooner after all, are the only calls spent on listing.
        """
        settings = self.settings
        limits = (settings.burst_limit_per_10s, settings.search_per_second, settings.page_size)
        if not list_reads_faster(*limits):
            return None
        unset = {"propertyName": self._mapping["status"], "operator": "NOT_HAS_PROPERTY"}
        open_deals, self._open_deals = self._open_deals, None
        if open_deals is None:
            open_deals = self._count([self._open_filter])
        all_deals = self._count([])
        unjudged = self._count([self._open_filter, unset])
        writes = expected_writes(unjudged)
        facts = {"open_deals": open_deals, "all_deals": all_deals, "without_status": unjudged}
        if not list_sweep_faster(open_deals, all_deals, *limits, writes=writes):
            log.info("hubspot full sweep", reads_by="search", **facts)
            return None
        pages = list_sweep(self._list)
        probe: list[Listed] = []
        trips: list[float] = []
        while len(probe) < LIST_PROBE and (not probe or probe[-1].after is not None):
            sent = self._context.clock()
            probe.append(next(pages))
            trips.append((self._context.clock() - sent).total_seconds())
        round_trip = min(trips)
        lists = list_sweep_faster(open_deals, all_deals, *limits, writes=writes, latency=round_trip)
        log.info(
            "hubspot full sweep",
            reads_by="list" if lists else "search",
            list_round_trip_s=round(round_trip, 3),
            **facts,
        )
        return itertools.chain(probe, pages) if lists else None

    def _count(self, filters: Sequence[dict[str, Any]]) -> int:
        response = self.client.call_json(
            SEARCH, "deals_search", "do_search", count_body(filters), expect="total"
        )
        return int(response.get("total") or 0)

    def _since(self, cursor: Cursor | None) -> datetime | None:
        if cursor is None:
            return None
        return cursor.modified_at - timedelta(minutes=self.settings.overlap_minutes)

    def fetch_changed(self, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]:
        """Open deals modified since `cursor` minus the search-lag overlap, by search; all open deals when
        `full`, through the list endpoint when that ends sooner (`list_sweep_faster`)."""
        if full:
            return self._full_pages()
        return self._pages(self._since(cursor), [])

    def expected_total(self, cursor: Cursor | None, *, full: bool = False) -> int | None:
        """How many open deals `fetch_changed(cursor, full=full)`, called next, is about to read, at no
        extra API call: the `total` of the sweep's first search, made now and kept for the sweep (whose
        upper bound is then fixed now). A full sweep that may list instead counts the open deals with a
        one-result search, the count it makes anyway to choose its endpoint, and keeps that."""
        since = self._since(cursor) if not full else None
        if full:
            settings = self.settings
            limits = (settings.burst_limit_per_10s, settings.search_per_second, settings.page_size)
            if list_reads_faster(*limits):
                self._primed = None
                self._open_deals = self._count([self._open_filter])
                return self._open_deals
        window = Window(since=since, until=self._context.clock())
        result = self._search(window, [])
        self._primed, self._open_deals = (window, result), None
        return result.total

    def fetch_by_owner(self, owner_id: str) -> Iterator[Page]:
        owner = {"propertyName": self._mapping["owner_id"], "operator": "EQ", "value": owner_id}
        return self._pages(None, [owner])

    def fetch_many(self, deal_ids: Sequence[str]) -> Iterator[Page]:
        """The open deals among `deal_ids`: one `batch/read` per BATCH_READ ids (the pull's properties,
        checked for drift), one Page each without a cursor. A deleted or unknown id is left out of the
        answer (HubSpot's 207 names it among the errors), a closed deal is dropped here."""
        ids = list(dict.fromkeys(deal_ids))
        is_closed = self._mapping["is_closed"]
        for start in range(0, len(ids), BATCH_READ):
            body = batch_read_body(ids[start : start + BATCH_READ], self._properties)
            response = self.client.call_json(
                OTHER, "deals_batch", "read", body, archived="false", expect="results"
            )
            records = records_of(response)
            require_properties(records, self._properties, self._mapping)
            page = _page([self._read(record) for record in records if is_open(record, is_closed)])
            yield Page(page.deals, None, page.unreadable)

    def fetch_one(self, deal_id: str) -> Deal | None:
        """The deal if it exists and is open; None when missing or closed."""
        try:
            record = self.client.call(
                "other", "deals_basic", "get_by_id", deal_id, properties=self._properties, archived="false"
            )
        except HubSpotRequestError as exc:
            if exc.status == 404:
                return None
            raise
        props = dict(record.properties or {})
        require_properties([Record(str(record.id), props)], self._properties, self._mapping)
        if (props.get(self._mapping["is_closed"]) or "").lower() == "true":
            return None
        return to_deal(str(record.id), props, self._table)

    def apply(self, plan: WritePlan) -> list[RowOutcome]:
        """Status writes first, then tasks, in separate batches; one RowOutcome per write."""
        outcomes: list[RowOutcome] = []
        if plan.status_writes:
            rows = [(w.deal_id, status_properties(w, self._table)) for w in plan.status_writes]
            results = batch_update(self.client, "deals_batch", rows, "deal")
            for write in plan.status_writes:
                result = results[write.deal_id]
                kind = OutcomeKind.WRITTEN if result.ok else OutcomeKind.REJECTED
                outcomes.append(
                    RowOutcome(write.deal_id, WriteTarget.STATUS, kind, result.code, result.message)
                )
        if plan.task_writes:
            outcomes.extend(self.tasks.apply(plan.task_writes))
        return outcomes

    def close(self) -> None:
        self.client.close()


def ui_host(ui_domain: str | None, api_host: str) -> str:
    """The HubSpot app's host for record links: the portal's `uiDomain` when HubSpot gave one, else by the
    API host the connection uses (EU data centre: api-eu1.hubapi.com -> app-eu1.hubspot.com)."""
    if ui_domain:
        return ui_domain
    return "app-eu1.hubspot.com" if "-eu1." in api_host else "app.hubspot.com"


def _later(a: Cursor | None, b: Cursor | None) -> Cursor | None:
    return max(a, b) if a and b else a or b


def _shared_limiter(settings: HubSpotSettings, context: ConnectorContext) -> RateLimiter:
    """The connection's rate limiter, kept in the worker's `pacing` across runs: HubSpot counts calls per
    portal in rolling windows, so a run started right after another must see the calls already in them."""
    key = f"hubspot-rate-limiter:{settings.burst_limit_per_10s}:{settings.search_per_second}"
    limiter = context.pacing.get(key)
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter(
            settings.burst_limit_per_10s,
            settings.search_per_second,
            clock=lambda: context.clock().timestamp(),
            sleep=context.sleep,
        )
        context.pacing[key] = limiter
    return limiter


def _page(read: list[Deal | UnreadableDeal]) -> Page:
    """Several search pages make one Page: batch writes then fill their chunks of 100 (fewer calls). The
    cursor moves past unreadable deals too: they are reported, and read again once someone edits them."""
    deals = tuple(d for d in read if isinstance(d, Deal))
    unreadable = tuple(d for d in read if isinstance(d, UnreadableDeal))
    stamps = [Cursor(d.modified_at, d.id) for d in deals if d.modified_at is not None]
    stamps += [Cursor(u.modified_at, u.deal_id) for u in unreadable if u.modified_at is not None]
    return Page(deals, max(stamps) if stamps else None, unreadable)
