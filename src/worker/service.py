"""The worker façade every trigger uses (CLI `sync`, the scheduler, the ops API, the demo).

`Worker(settings)` opens the state store once, builds connectors and frameworks per connection, and runs a
RunRequest to a RunSummary. Triggers differ only in `RunRequest.trigger`.
"""

from __future__ import annotations

import functools
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
from worker.state.heartbeat import Heartbeats, Wait, event_wait
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
        heartbeat_wait: Wait = event_wait,
    ) -> None:
        self.settings = settings
        self.store = store or StateStore.open(settings.state.database_url())
        self.clock = clock
        self.stop = stop or threading.Event()
        self._sleep = sleep if sleep is not None else time.sleep
        self._wait = sleep if sleep is not None else self.stop.wait
        self._frameworks: dict[str, Framework] = {}
        self._zone = ZoneInfo(settings.rules.timezone)
        self.heartbeats = Heartbeats(heartbeat_wait)
        """The lease heartbeats of this worker's runs in progress (`heartbeat_wait` paces them)."""
        self._pacing: dict[str, dict[str, object]] = {}
        """Per connection, what its connectors keep across runs to pace their calls (ConnectorContext)."""

    @property
    def max_wait(self) -> float:
        """The longest single wait, in seconds: a third of the lease TTL, so a run checks its lease (kept
        alive by its heartbeat meanwhile) several times within any TTL however long the CRM asks it to
        wait."""
        return self.settings.run.lease_ttl_seconds / 3

    def sleep(self, seconds: float, connection: str | None = None) -> None:
        """Every wait a connector makes (retry backoff, Retry-After, rate-limit pacing). A short one is
        slept out, so a stopping run still finishes its page; one of `STOPPABLE_WAIT_SECONDS` or more wakes
        as soon as a stop is asked and then, like when a stop was already asked, raises RunStopped.

        A wait is cut into slices of at most `max_wait`. After each, the lease of the run in progress on
        `connection` is checked (LeaseLostError once its heartbeat found it lost), and after a wait longer
        than one slice it is verified in the state store, so a run never writes after a long wait on a
        lease it no longer holds."""
        if seconds < STOPPABLE_WAIT_SECONDS:
            self._sleep(seconds)
            return
        heartbeat = self.heartbeats.of(connection) if connection is not None else None
        left = seconds
        while left > 0:
            piece = min(left, self.max_wait)
            if not self.stop.is_set():
                self._wait(piece)
            if self.stop.is_set():
                raise RunStopped(
                    f"stop requested during a {seconds:.0f} s wait to retry or for the rate limit"
                )
            left -= piece
            if heartbeat is not None:
                heartbeat.check()
        if heartbeat is not None and seconds > self.max_wait:
            heartbeat.beat()

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
            sleep=functools.partial(self.sleep, connection=conn.name),
            pacing=self._pacing.setdefault(conn.name, {}),
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
            heartbeats=self.heartbeats,
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
