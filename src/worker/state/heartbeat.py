"""A run's heartbeat: a thread that renews the run's lease every TTL/3, whatever the pages are doing.

A page can take long (a slow CRM, a long `Retry-After`): the lease must not expire under a live run, or a
second run would start while the first still writes. So the lease is renewed by its own thread, started
when the run takes its lease and stopped (joined) on every way out of the run. A renewal that finds the
lease taken over or released records the LeaseLostError and the thread ends; the run raises it at its
next check (each page, each slice of a long wait), and its checkpoint would refuse it anyway (the fencing
token). A renewal that fails because the state store is briefly unavailable is logged and retried at the
next beat: the lease stays ours until another run takes it, which the next successful beat finds out.

`Heartbeats` is the set of heartbeats of the runs in progress in one process, by connection (the lease
allows one run per connection at a time), so a wait deep inside a connector can check its run's lease.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from worker.state.errors import LeaseLostError, StateError
from worker.state.model import Lease
from worker.state.store import StateStore

log = structlog.get_logger()

Wait = Callable[[threading.Event, float], bool]
"""Wait up to N seconds or until the event is set; True when it was set (the heartbeat is stopping)."""


def event_wait(stopped: threading.Event, seconds: float) -> bool:
    return stopped.wait(seconds)


class Heartbeat:
    """Keeps one run's lease alive. `lease` is the latest renewal; `check()` raises once it was lost."""

    def __init__(
        self,
        store: StateStore,
        lease: Lease,
        ttl: timedelta,
        clock: Callable[[], datetime],
        *,
        wait: Wait = event_wait,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError(f"lease ttl must be positive, got {ttl}")
        self.interval = ttl.total_seconds() / 3
        """Seconds between renewals: two may fail (a state store hiccup) before the lease expires."""
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._wait = wait
        self._lease = lease
        self._lost: LeaseLostError | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.beats = 0
        """Renewals made so far (by the thread or by `beat()`)."""

    @property
    def lease(self) -> Lease:
        return self._lease

    @property
    def connection(self) -> str:
        return self._lease.connection

    @property
    def lost(self) -> LeaseLostError | None:
        return self._lost

    @property
    def alive(self) -> bool:
        """True while the heartbeat thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Heartbeat:
        """Start beating on a thread that carries the caller's log context (run id, connection)."""
        if self._thread is not None:
            raise RuntimeError("a heartbeat starts once")
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._beat_until_stopped,), name=f"lease-heartbeat-{self._lease.run_id}"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for the thread to end (it never outlives its run). Idempotent."""
        self._stopped.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def check(self) -> None:
        """Raise the LeaseLostError a renewal found, if any: the run must stop without writing more."""
        if self._lost is not None:
            raise self._lost

    def beat(self) -> Lease:
        """Renew the lease now (the thread's beat, or a caller verifying the lease after a long wait).
        Raises LeaseLostError when the lease is no longer ours, now or at an earlier beat."""
        with self._lock:
            self.check()
            try:
                self._lease = self._store.renew_lease(self._lease, self._clock(), self._ttl)
            except LeaseLostError as exc:
                self._lost = exc
                raise
            self.beats += 1
            return self._lease

    def _beat_until_stopped(self) -> None:
        while not self._wait(self._stopped, self.interval):
            try:
                self.beat()
            except LeaseLostError as exc:
                log.error("lease lost: the run stops at its next check", error=str(exc))
                return
            except StateError as exc:
                log.warning("could not renew the lease; trying again at the next beat", error=str(exc))


class Heartbeats:
    """The heartbeats of the runs in progress in this process, by connection."""

    def __init__(self, wait: Wait = event_wait) -> None:
        self._wait = wait
        self._running: dict[str, Heartbeat] = {}
        self._lock = threading.Lock()

    def start(
        self, store: StateStore, lease: Lease, ttl: timedelta, clock: Callable[[], datetime]
    ) -> Heartbeat:
        """Start the heartbeat of the run that has just taken `lease`."""
        heartbeat = Heartbeat(store, lease, ttl, clock, wait=self._wait)
        with self._lock:
            self._running[lease.connection] = heartbeat
        return heartbeat.start()

    def stop(self, heartbeat: Heartbeat) -> None:
        """Stop `heartbeat` and forget it (its run is ending)."""
        heartbeat.stop()
        with self._lock:
            if self._running.get(heartbeat.connection) is heartbeat:
                del self._running[heartbeat.connection]

    def of(self, connection: str) -> Heartbeat | None:
        """The heartbeat of the run in progress on `connection`, if one runs in this process."""
        with self._lock:
            return self._running.get(connection)

    def running(self) -> list[Heartbeat]:
        with self._lock:
            return list(self._running.values())
