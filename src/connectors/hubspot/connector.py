"""The HubSpot connector: the Connector protocol over the client seam, pull, write-back and tasks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from connectors.errors import ConfigurationError, SchemaDriftError
from connectors.hubspot.auth import token_source
from connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from connectors.hubspot.mapping import deal_table, parse_datetime, status_properties, to_deal
from connectors.hubspot.preflight import preflight
from connectors.hubspot.pull import Record, Result, Sweeper, Window, require_properties, search_body
from connectors.hubspot.ratelimit import SEARCH, RateLimiter
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.setup import setup
from connectors.hubspot.tasks import TaskWriter
from connectors.hubspot.write import batch_update
from connectors.model import (
    Capabilities,
    CrmTask,
    Cursor,
    OutcomeKind,
    Page,
    RowOutcome,
    SetupReport,
    WritePlan,
    WriteTarget,
)
from connectors.registry import ConnectorContext
from connectors.request_settings import retry_policy
from rules.model import Deal


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
        self.limiter = RateLimiter(
            settings.burst_limit_per_10s,
            settings.search_per_second,
            clock=lambda: context.clock().timestamp(),
            sleep=context.sleep,
        )
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
        self.last_sweep: Sweeper | None = None
        self._properties = sorted(set(self._mapping.values()))
        self._open_filter = {"propertyName": self._mapping["is_closed"], "operator": "NEQ", "value": "true"}

    @property
    def api_calls(self) -> int:
        return self.client.calls

    def preflight(self) -> None:
        self.tasks.association_type_id = preflight(self.client, self.settings)
        if self._portal_id is None:
            self._portal_id = self._read_portal_id()

    def _read_portal_id(self) -> str:
        """The portal's id (Account Information API; any token of the portal may read it)."""
        details = self.client.call_json("other", "account_info", "details")
        portal = details.get("portalId")
        if portal is None:
            raise ConfigurationError("HubSpot's account details carry no portalId; check the access token")
        return str(portal)

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

    def setup(self, check_only: bool = False) -> SetupReport:
        """Create bant-sync's property group and output properties (a second run changes nothing) and
        check the input ones; `check_only` changes nothing and reports what is missing."""
        if not check_only:
            made = setup(self.client, self.settings)
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
        return parse_datetime(record.properties.get(self._mapping["modified_at"]))

    def _search(self, window: Window, filters: Sequence[dict[str, Any]]) -> Result:
        body = search_body(
            window,
            [self._open_filter, *filters],
            self._properties,
            self.settings.page_size,
            self._mapping["modified_at"],
        )
        response = self.client.call_json(SEARCH, "deals_search", "do_search", body)
        records = tuple(
            Record(str(r["id"]), dict(r.get("properties") or {})) for r in response.get("results") or []
        )
        require_properties(records, self._properties, self._mapping)
        after = ((response.get("paging") or {}).get("next") or {}).get("after")
        return Result(records, after is not None)

    def _pages(self, since: Any, filters: Sequence[dict[str, Any]]) -> Iterator[Page]:
        scoped = list(filters)
        sweeper = Sweeper(
            lambda window: self._search(window, scoped),
            self.settings.page_size,
            self._modified_of,
        )
        self.last_sweep = sweeper
        batch: list[Deal] = []
        for records in sweeper.sweep(since, self._context.clock()):
            batch.extend(to_deal(r.id, r.properties, self._table) for r in records)
            if len(batch) >= self.settings.deals_per_page - self.settings.page_size:
                yield _page(batch)
                batch = []
        if batch:
            yield _page(batch)

    def fetch_changed(self, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]:
        """Open deals modified since `cursor` minus the search-lag overlap (all open deals when `full`)."""
        since = None
        if cursor is not None and not full:
            since = cursor.modified_at - timedelta(minutes=self.settings.overlap_minutes)
        return self._pages(since, [])

    def fetch_by_owner(self, owner_id: str) -> Iterator[Page]:
        owner = {"propertyName": self._mapping["owner_id"], "operator": "EQ", "value": owner_id}
        return self._pages(None, [owner])

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


def _page(deals: list[Deal]) -> Page:
    """Several search pages make one Page: batch writes then fill their chunks of 100 (fewer calls)."""
    stamps = [Cursor(d.modified_at, d.id) for d in deals if d.modified_at is not None]
    return Page(tuple(deals), max(stamps) if stamps else None)
