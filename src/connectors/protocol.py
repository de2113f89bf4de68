"""The contract every connector (built in or a plugin) fulfils. The worker depends on nothing else."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

from connectors.model import (
    Capabilities,
    ChangeBatch,
    ClosedDeal,
    CrmTask,
    Cursor,
    HistoryWindow,
    Owner,
    Page,
    RowOutcome,
    SetupReport,
    WritePlan,
)
from rules.model import Deal


@runtime_checkable
class Connector(Protocol):
    """One connection to one CRM account.

    - `preflight()` authenticates and checks every mapped field exists and is readable/writable, raising
      ConfigurationError/SchemaDriftError naming each problem before anything is written.
    - `setup(check_only, create_inputs)` makes the CRM ready where it can through the API (`check_only`:
      changes nothing; `create_inputs`: also create the input fields people fill in, where the CRM allows
      it) and reports per field what is in place and what to fix; it raises only when the CRM cannot be
      asked.
    - `fetch_changed(cursor, full=False)` yields pages of open deals changed at or after `cursor` (minus the
      overlap window), oldest first, each with the cursor to save after it; `full=True` sweeps all open deals,
      possibly in another order (HubSpot's list endpoint): then a page may carry no cursor, and the last page
      carries the sweep's, so a sweep that stops early leaves the saved cursor where it was.
    - `fetch_one` / `fetch_by_owner` serve scoped resyncs.
    - `fetch_many(deal_ids)` reads those deals with batch calls (HubSpot `batch/read`, 100 ids a call;
      Salesforce one SOQL query per 200 ids), for an EVENTS run over the deals CRM events marked dirty.
      Only open deals come back: a closed, deleted or unknown id is simply absent. Pages carry no cursor.
    - `apply(plan)` performs the writes in batches and returns one RowOutcome per status write and per task
      write; a rejected row never fails the others.
    - `identity` (known after preflight) names the CRM account: `salesforce:<org id>`,
      `hubspot:<portal id>`. Task keys are derived from it, never from the connection's name.
    - `find_tasks(keys)` reads the bant-sync tasks the CRM holds under those sync keys, in batches (the
      worker reconciles against them; a connector keeps no state of its own about tasks).
    - `owners()` reads every user who can own a deal (one paged read), so the worker can show names and
      accept e-mails; the worker caches them (a connector keeps nothing).
    - `closed_deals(window)` yields, in batches, the deals closed (won or lost) in the window with their
      qualification fields as they were at the entry point, read from the CRM's field history (Salesforce
      `OpportunityFieldHistory`/`OpportunityHistory`, HubSpot `propertiesWithHistory`), for the outcome
      report; where history is missing the value at close stands in and `fallback_fields` says so.
    - `record_url(deal_id)` is the link a person opens to see the deal in the CRM (known after preflight).
    - `capabilities` declares what the worker may rely on (read-ahead, batch caps); nothing is probed.
    - `field_names` maps canonical deal fields (`budget`, ...) to the CRM's names, for task wording.
    - `api_calls` counts the CRM API calls made by this instance (for run records and budgets).
    """

    name: str
    capabilities: Capabilities

    def preflight(self) -> None: ...

    def setup(self, check_only: bool, create_inputs: bool = False) -> SetupReport: ...

    def fetch_changed(self, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]: ...

    def fetch_one(self, deal_id: str) -> Deal | None: ...

    def fetch_by_owner(self, owner_id: str) -> Iterator[Page]: ...

    def fetch_many(self, deal_ids: Sequence[str]) -> Iterator[Page]: ...

    def apply(self, plan: WritePlan) -> list[RowOutcome]: ...

    @property
    def identity(self) -> str: ...

    def find_tasks(self, keys: Sequence[str]) -> dict[str, CrmTask]: ...

    def owners(self) -> list[Owner]: ...

    def closed_deals(self, window: HistoryWindow) -> Iterator[list[ClosedDeal]]: ...

    def record_url(self, deal_id: str) -> str: ...

    @property
    def field_names(self) -> Mapping[str, str]: ...

    @property
    def api_calls(self) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class CountsDeals(Protocol):
    """An optional addition to Connector: `expected_total(cursor, full=...)` says how many open deals the
    `fetch_changed(cursor, full=...)` called next on the same instance is about to read, where the CRM
    says it cheaply (Salesforce one `SELECT COUNT()` under the same filter, HubSpot the search's `total`),
    else None. It is for a progress display only: the worker calls it only when one wants a total (never
    in scheduled or API-triggered runs), after preflight, and the count may differ a little from the deals
    then read (deals changed in between; unreadable values)."""

    def expected_total(self, cursor: Cursor | None, *, full: bool = False) -> int | None: ...


class ChangeStream(Protocol):
    """An open subscription to a CRM's change stream. Iterating it blocks until the CRM sends something and
    yields ChangeBatches in stream order; it raises TransientError when the stream drops (the caller
    subscribes again from the last saved position), ReplayExpiredError when the position it started from is
    past the CRM's retention, AuthenticationError or ConfigurationError when it cannot work at all.
    `cancel()` may be called from any thread: the iteration then ends (no error) soon after."""

    def __iter__(self) -> Iterator[ChangeBatch]: ...

    def cancel(self) -> None: ...


@runtime_checkable
class StreamsChanges(Protocol):
    """An optional addition to Connector, for a CRM that pushes its changes over a stream the client holds
    open (Salesforce Change Data Capture over the Pub/Sub API); a CRM that pushes by webhook has none.

    `change_stream(position)` subscribes from `position` (a `ChangeBatch.position` saved earlier; None: from
    now on) and returns the open stream. `changes_enabled` says whether the connection's settings turn the
    stream on. The worker (`worker.events.stream`) runs one per such connection in `serve`."""

    @property
    def changes_enabled(self) -> bool: ...

    def change_stream(self, position: str | None) -> ChangeStream: ...
