"""The Salesforce connector: preflight, incremental pull, batched status writes and keyed task writes."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from urllib.parse import quote, urlparse

from connectors.errors import ConfigurationError
from connectors.model import (
    Capabilities,
    ClosedDeal,
    CrmTask,
    Cursor,
    HistoryWindow,
    Owner,
    Page,
    RowOutcome,
    SetupReport,
    UnreadableDeal,
    WritePlan,
)
from connectors.registry import ConnectorContext
from connectors.request_settings import retry_policy
from connectors.salesforce.cdc import ChangeSubscription, StreamCredentials
from connectors.salesforce.cdc_decode import echo_fields, output_field_names
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.history import HistoryReader
from connectors.salesforce.owners import read_owners
from connectors.salesforce.preflight import DEPLOY, PreflightReport, preflight
from connectors.salesforce.pull import IDS_PER_QUERY, OpportunityReader, paginate
from connectors.salesforce.settings import OUTPUT_KEYS, SalesforceSettings
from connectors.salesforce.tasks import TaskWriter, find_tasks
from connectors.salesforce.write import CollectionWriter, write_statuses
from rules.model import Deal


class SalesforceConnector:
    """One Salesforce org connection for one run; make one per run. Its client is shared by the read-ahead
    (`capabilities.prefetch`) and the parallel batches of a write."""

    name = "salesforce"
    capabilities = Capabilities(prefetch=True, status_batch=200, task_batch=200)
    """sObject Collections take 200 records a call."""

    def __init__(
        self, settings: SalesforceSettings, context: ConnectorContext, rng: random.Random | None = None
    ) -> None:
        settings.validate()
        self.settings = settings
        self.context = context
        self.policy = retry_policy(settings, context.sleep, rng)
        self.client = SalesforceClient(settings, dict(context.secrets), self.policy, context.clock)
        self.writer = CollectionWriter(self.client, settings.max_in_flight)
        self.report: PreflightReport | None = None
        self._reader: OpportunityReader | None = None
        self._org_id: str | None = None
        self._tenant_id: str | None = None
        self._stream_credentials = StreamCredentials(self.client.authenticator, self.tenant_id)

    def preflight(self) -> None:
        """Authenticate and check both objects; raise SchemaDriftError naming every problem."""
        report = preflight(self.client, self.settings)
        report.raise_for_problems()
        self.report = report
        if self._org_id is None:
            self._org_id = self._read_org_id()
        self._reader = OpportunityReader(
            self.settings.field_map, self.settings.custom_fields, report.opportunity_types
        )

    def _read_org_id(self) -> str:
        """The org's id (`SELECT Id FROM Organization`): every user can read it, whatever the auth mode."""
        return self.tenant_id()[:15]

    def tenant_id(self) -> str:
        """The org's full (18-character) id, read once: the Pub/Sub API's `tenantid`."""
        if self._tenant_id is None:
            for record in self.client.query("SELECT Id FROM Organization LIMIT 1"):
                self._tenant_id = str(record["Id"])
                break
            else:
                raise ConfigurationError(
                    "Salesforce returned no Organization record; check that the integration user has API "
                    "access"
                )
        return self._tenant_id

    @property
    def changes_enabled(self) -> bool:
        """`change_events = true`: `serve` follows this org's Opportunity change events."""
        return self.settings.change_events

    def change_stream(self, position: str | None) -> ChangeSubscription:
        """Subscribe to Change Data Capture on Opportunity from `position` (a saved replay id in hex; None:
        from now on), over the Pub/Sub API at `pubsub_endpoint` (connectors/salesforce/cdc.py)."""
        own = echo_fields(output_field_names(self.settings.field_map, OUTPUT_KEYS))
        return ChangeSubscription(self.settings, self._stream_credentials, position, own)

    def check_change_stream(self) -> str:
        """What `bant-sync check` asks when `change_events = true`: the Pub/Sub API at `pubsub_endpoint`
        answers, accepts the token and lets the integration user subscribe to Opportunity change events.
        Returns a line saying so; raises the error the stream would meet."""
        schema_id = self.change_stream(None).probe()
        return f"change stream ready ({self.settings.pubsub_endpoint}, schema {schema_id})"

    @property
    def identity(self) -> str:
        """`salesforce:<15-character org id>` (known after preflight)."""
        if self._org_id is None:
            self._org_id = self._read_org_id()
        return f"salesforce:{self._org_id}"

    @property
    def field_names(self) -> Mapping[str, str]:
        return {**self.settings.field_map, **self.settings.custom_fields}

    def find_tasks(self, keys: Sequence[str]) -> dict[str, CrmTask]:
        """The bant-sync tasks this org holds under these sync keys."""
        if not keys:
            return {}
        return find_tasks(self.writer, keys, self.settings.task_key_field)

    def owners(self) -> list[Owner]:
        """Every `User` of the org (names, e-mails, managers), one paged query."""
        return read_owners(self.client)

    def closed_deals(self, window: HistoryWindow) -> Iterator[list[ClosedDeal]]:
        """Deals closed in the window, page by page (2,000), with their criteria as they were at the entry
        point, rebuilt from field history (connectors/salesforce/history.py; budget in docs/design.md §5)."""
        reader = self.reader
        assert self.report is not None
        history = HistoryReader(
            self.client,
            reader,
            self.settings.field_map,
            self.settings.custom_fields,
            self.report.opportunity_types,
        )
        return history.closed_deals(window)

    def record_url(self, deal_id: str) -> str:
        """The deal's Lightning record page on the org's own host (the authenticated instance URL)."""
        host = urlparse(self.client.sf.base_url).netloc
        return f"https://{host}/lightning/r/Opportunity/{quote(deal_id, safe='')}/view"

    def setup(self, check_only: bool = False, create_inputs: bool = False) -> SetupReport:
        """Salesforce fields are metadata an admin deploys from config/salesforce/, not created through the
        API: setup only checks authentication, every mapped field, the task key and today's API usage
        (`create_inputs` creates nothing here: the deploy brings the input fields)."""
        report = self.check()
        notes: list[str] = []
        if create_inputs:
            notes.append(
                "--create-inputs creates nothing on Salesforce: the input fields are deployed from "
                "config/salesforce with the rest"
            )
        client = self.client
        if client.used is not None and client.limit:
            share = client.used / client.limit
            stop = self.settings.quota_stop_share
            notes.append(
                f"API usage today {client.used}/{client.limit} ({share:.0%}); runs stop at {stop:.0%}"
            )
        if not check_only and not report.ok:
            notes.append(f"deploy the fields with: {DEPLOY} (docs/admin-guide.md)")
        return SetupReport(
            ok=(f"authenticated to {client.sf.base_url.split('/services')[0]}", *report.passed),
            problems=tuple(str(p) for p in report.problems),
            notes=tuple(notes),
        )

    def check(self) -> PreflightReport:
        """The preflight report without raising (for `bant-sync setup --check`)."""
        return preflight(self.client, self.settings)

    @property
    def reader(self) -> OpportunityReader:
        if self._reader is None:
            self.preflight()
        assert self._reader is not None
        return self._reader

    def _pages(self, soql: str, floor: Cursor | None = None) -> Iterator[Page]:
        size = self.settings.query_batch_size
        reader = self.reader
        records = self.client.query(soql, batch_size=size)
        return paginate((reader.read(record) for record in records), size, floor)

    def _changed_soql(self, cursor: Cursor | None, full: bool, count: bool = False) -> str:
        """The query of `fetch_changed` (or, with `count`, its `SELECT COUNT()` twin)."""
        reader = self.reader
        if full or cursor is None:
            return reader.soql(count=count)
        overlap = timedelta(minutes=self.settings.overlap_minutes)
        if overlap:
            return reader.soql(since=cursor.modified_at - overlap, count=count)
        return reader.soql(after=cursor, count=count)

    def fetch_changed(self, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]:
        """Open opportunities changed at/after the cursor (minus the overlap), oldest first."""
        floor = None if full else cursor
        return self._pages(self._changed_soql(cursor, full), floor)

    def expected_total(self, cursor: Cursor | None, *, full: bool = False) -> int | None:
        """How many open opportunities `fetch_changed(cursor, full=full)` is about to read: one
        `SELECT COUNT()` under the same filter (one API call; its `totalSize`)."""
        answer = self.client.sf.query(self._changed_soql(cursor, full, count=True))
        return int(answer["totalSize"])

    def fetch_one(self, deal_id: str) -> Deal | None:
        """The open opportunity with this id, or None when it is closed, deleted or unknown."""
        records = self.client.query(self.reader.soql(deal_id=deal_id))
        for record in records:
            return self.reader.deal(record)
        return None

    def fetch_by_owner(self, owner_id: str) -> Iterator[Page]:
        return self._pages(self.reader.soql(owner_id=owner_id))

    def fetch_many(self, deal_ids: Sequence[str]) -> Iterator[Page]:
        """The open opportunities among `deal_ids`: one query per IDS_PER_QUERY ids, one Page each, without
        a cursor; closed, deleted and unknown ids are absent."""
        reader = self.reader
        ids = list(dict.fromkeys(deal_ids))
        for start in range(0, len(ids), IDS_PER_QUERY):
            soql = reader.soql(deal_ids=ids[start : start + IDS_PER_QUERY])
            read = [reader.read(record) for record in self.client.query(soql, batch_size=IDS_PER_QUERY)]
            deals = tuple(d for d in read if isinstance(d, Deal))
            yield Page(deals, None, tuple(d for d in read if isinstance(d, UnreadableDeal)))

    def apply(self, plan: WritePlan) -> list[RowOutcome]:
        """Status writes first, then task writes, in separate calls: the two never contend for one deal's
        lock inside a single request."""
        if plan.is_empty:
            return []
        if self.report is None:
            self.preflight()
        assert self.report is not None
        outcomes = write_statuses(self.writer, plan.status_writes, self.settings.field_map)
        if not plan.task_writes:
            return outcomes
        tasks = TaskWriter(self.writer, self.settings.task_key_field, self.report.task_key_is_external_id)
        return outcomes + tasks.apply(plan.task_writes)

    @property
    def api_calls(self) -> int:
        return self.client.calls

    def close(self) -> None:
        self.client.close()
