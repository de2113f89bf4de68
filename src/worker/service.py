"""The worker façade every trigger uses (CLI `sync`, the scheduler, the ops API, the demo).

`Worker(settings)` opens the state store once, builds connectors and frameworks per connection, and runs a
RunRequest to a RunSummary. Triggers differ only in `RunRequest.trigger`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from connectors.protocol import Connector
from connectors.registry import ConnectorContext, factory_for
from rules import Framework
from worker.config.frameworks import load_framework
from worker.config.settings import Settings
from worker.errors import RunStopped, UsageError
from worker.state import Lease, StateStore
from worker.sync.pipeline import ProgressHook, RunEnvironment, SyncRun, new_run_id
from worker.sync.run_model import RunRequest, RunSummary

STOPPABLE_WAIT_SECONDS = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker:
    """Runs sync runs for the connections of one Settings; thread-safe (each run has its own connector)."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or StateStore.open(settings.state.database_url())
        self.clock = clock
        self.stop = stop or threading.Event()
        self._sleep = sleep if sleep is not None else time.sleep
        self._wait = sleep if sleep is not None else self.stop.wait
        self._frameworks: dict[str, Framework] = {}
        self._zone = ZoneInfo(settings.rules.timezone)

    def sleep(self, seconds: float) -> None:
        """Every wait a connector makes (retry backoff, Retry-After, rate-limit pacing). A short one is
        slept out, so a stopping run still finishes its page; one of `STOPPABLE_WAIT_SECONDS` or more wakes
        as soon as a stop is asked and then, like when a stop was already asked, raises RunStopped."""
        if seconds < STOPPABLE_WAIT_SECONDS:
            self._sleep(seconds)
            return
        if not self.stop.is_set():
            self._wait(seconds)
        if self.stop.is_set():
            raise RunStopped(f"stop requested during a {seconds:.0f} s wait to retry or for the rate limit")

    def today(self) -> date:
        return self.clock().astimezone(self._zone).date()

    def connector(self, connection: str) -> Connector:
        conn = self.settings.connection(connection)
        if not conn.enabled:
            raise UsageError(f"connection {connection!r} is disabled (enabled = false in its config)")
        factory = factory_for(conn.crm)
        context = ConnectorContext(
            connection=conn.name,
            secrets=conn.revealed_secrets(),
            clock=self.clock,
            sleep=self.sleep,
        )
        return factory.create(conn.crm_settings, context)

    def framework(self, connection: str) -> Framework:
        name = self.settings.connection(connection).framework
        if name not in self._frameworks:
            self._frameworks[name] = load_framework(name, self.settings.config_dir)
        return self._frameworks[name]

    def environment(self, progress: ProgressHook | None = None) -> RunEnvironment:
        run = self.settings.run
        return RunEnvironment(
            store=self.store,
            connector_for=self.connector,
            framework_for=self.framework,
            clock=self.clock,
            today=self.today,
            lease_ttl=timedelta(seconds=run.lease_ttl_seconds),
            deadline=timedelta(minutes=run.deadline_minutes),
            task_due_business_days=run.task_due_business_days,
            completed_tasks=run.completed_tasks,
            configured=frozenset(n for n, c in self.settings.connections.items() if c.enabled),
            stop=self.stop,
            progress=progress,
        )

    def run(
        self,
        request: RunRequest,
        progress: ProgressHook | None = None,
        run_id: str | None = None,
        lease: Lease | None = None,
    ) -> RunSummary:
        """Run one sync now. Raises LeaseHeldError if another run holds the connection."""
        self.settings.connection(request.connection)
        return SyncRun(self.environment(progress)).execute(request, run_id, lease)

    def reserve(self, connection: str) -> Lease:
        """Take the lease for a run that starts shortly (`run(..., lease=...)`); LeaseHeldError if held."""
        self.settings.connection(connection)
        return SyncRun(self.environment()).acquire(connection, new_run_id())

    def close(self) -> None:
        self.store.close()
