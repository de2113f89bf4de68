"""A Worker over a real SQLite StateStore with a fake CRM connection, for the scheduler and ops API tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

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
    WritePlan,
)
from connectors.protocol import Connector
from rules.model import Deal
from worker.config.secrets import Secret
from worker.config.settings import (
    ConnectionSettings,
    RulesSettings,
    ScheduleSettings,
    Settings,
    StateSettings,
)
from worker.service import Worker
from worker.state import Lease, StateStore
from worker.sync.pipeline import ProgressHook
from worker.sync.run_model import RunRequest, RunSummary

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TOKEN = "ops-token-0123456789abcdef0123456789"
TTL = timedelta(minutes=15)


class FakeConnector:
    """A CRM with no open deals; `fail` makes preflight raise an unexpected (non-connector) error."""

    name = "fake"
    capabilities = Capabilities(prefetch=False, status_batch=200, task_batch=200)

    def __init__(self, fail: BaseException | None = None, account: str = "account") -> None:
        self._fail = fail
        self._account = account
        self.calls = 0

    def preflight(self) -> None:
        self.calls += 1
        if self._fail is not None:
            raise self._fail

    def setup(self, check_only: bool, create_inputs: bool = False) -> SetupReport:
        return SetupReport(ok=("nothing to set up",))

    def fetch_changed(self, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]:
        self.calls += 1
        yield Page((), None)

    def fetch_one(self, deal_id: str) -> Deal | None:
        self.calls += 1
        return None

    def fetch_by_owner(self, owner_id: str) -> Iterator[Page]:
        self.calls += 1
        yield Page((), None)

    def apply(self, plan: WritePlan) -> list[RowOutcome]:
        return []

    @property
    def identity(self) -> str:
        return f"fake:{self._account}"

    def find_tasks(self, keys: Sequence[str]) -> dict[str, CrmTask]:
        return {}

    def owners(self) -> list[Owner]:
        return []

    def closed_deals(self, window: HistoryWindow) -> Iterator[list[ClosedDeal]]:
        self.calls += 1
        yield []

    def record_url(self, deal_id: str) -> str:
        return f"https://crm.invalid/deals/{deal_id}"

    @property
    def field_names(self) -> Mapping[str, str]:
        return {}

    @property
    def api_calls(self) -> int:
        return self.calls

    def close(self) -> None:
        pass


class FakeWorker(Worker):
    """A Worker whose connections talk to FakeConnector; `gate`, when set, holds runs until it opens."""

    fail: BaseException | None = None
    gate: threading.Event | None = None

    def connector(self, connection: str) -> Connector:
        self.settings.connection(connection)
        return FakeConnector(self.fail, account=connection)

    def run(
        self,
        request: RunRequest,
        progress: ProgressHook | None = None,
        run_id: str | None = None,
        lease: Lease | None = None,
    ) -> RunSummary:
        if self.gate is not None:
            self.gate.wait(10)
        return super().run(request, progress, run_id, lease)


def connection(name: str, enabled: bool = True, **schedule: object) -> ConnectionSettings:
    return ConnectionSettings(
        name=name,
        crm="fake",
        enabled=enabled,
        framework="bant",
        schedule=ScheduleSettings(**schedule),  # type: ignore[arg-type]
        crm_settings=None,
    )


def make_worker(tmp_path: Path, *connections: ConnectionSettings, timezone: str = "UTC") -> FakeWorker:
    conns = connections or (connection("main"),)
    settings = Settings(
        state=StateSettings(dir=str(tmp_path)),
        rules=RulesSettings(timezone=timezone),
        connections={c.name: c for c in conns},
        ops_token=Secret(TOKEN, "test"),
    )
    store = StateStore.open(settings.state.database_url())
    return FakeWorker(settings, store, clock=lambda: T0, sleep=lambda seconds: None)


def reset_structlog() -> Iterator[None]:
    """Fixture body: structlog's defaults whatever level an earlier test set (capture_logs needs INFO)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
