"""The contract every connector (built in or a plugin) fulfils. The worker depends on nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from connectors.model import Cursor, Page, RowOutcome, WritePlan
from rules.model import Deal


@runtime_checkable
class Connector(Protocol):
    """One connection to one CRM account.

    - `preflight()` authenticates and checks every mapped field exists and is readable/writable, raising
      ConfigurationError/SchemaDriftError naming each problem before anything is written.
    - `fetch_changed(cursor, full=False)` yields pages of open deals changed at or after `cursor` (minus the
      overlap window), oldest first, each with the cursor to save after it; `full=True` sweeps all open deals.
    - `fetch_one` / `fetch_by_owner` serve scoped resyncs.
    - `apply(plan)` performs the writes in batches and returns one RowOutcome per status write and per task
      write; a rejected row never fails the others.
    - `api_calls` counts the CRM API calls made by this instance (for run records and budgets).
    """

    name: str

    def preflight(self) -> None: ...

    def fetch_changed(self, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]: ...

    def fetch_one(self, deal_id: str) -> Deal | None: ...

    def fetch_by_owner(self, owner_id: str) -> Iterator[Page]: ...

    def apply(self, plan: WritePlan) -> list[RowOutcome]: ...

    @property
    def api_calls(self) -> int: ...

    def close(self) -> None: ...
