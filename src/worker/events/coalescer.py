"""One debounced re-assessment per connection for a burst of CRM change events.

`notify(connection)` says "this connection has new dirty deals". The coalescer waits for a trailing window
of `debounce_seconds` after the last notify, but never longer than `max_delay_seconds` after the first notify
of the burst, then calls `start_run(connection)` once (the caller's function runs an EVENTS run). A burst of
10,000 edits therefore becomes a few runs that each re-read many deals with batch calls, while a single edit
is re-assessed `debounce_seconds` after it arrived.

`start_run` runs on the timer's thread. A notify that arrives while a run is under way opens a new window;
when it closes and the run still holds the lease, `start_run` raises LeaseHeldError and the coalescer tries
again one window later. Any other exception is logged and dropped: the marks stay dirty, so the next event
(or the scheduled incremental run, the reconciliation path) catches the deals.

`windows` gives a connection its own (debounce, max delay) (its `event_debounce_seconds` and
`event_max_delay_seconds`); others use the defaults. `close(wait=True)` cancels the open windows and waits
for a run under way to end (the service is stopping: the run stops after its page).

The clock (monotonic seconds) and the timer factory are injected, so tests drive time by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from worker.state import LeaseHeldError

log = structlog.get_logger()


class Timer(Protocol):
    """A started one-shot timer."""

    def cancel(self) -> None: ...


TimerFactory = Callable[[float, Callable[[], None]], Timer]
"""Starts a timer calling the function once after that many seconds, and returns it."""


def thread_timer(delay: float, callback: Callable[[], None]) -> Timer:
    """The production timer: a daemon threading.Timer, started."""
    timer = threading.Timer(delay, callback)
    timer.daemon = True
    timer.start()
    return timer


@dataclass
class _Burst:
    first: float
    last: float
    timer: Timer


class EventCoalescer:
    """A trailing debounce, capped, per connection; see the module docstring."""

    def __init__(
        self,
        start_run: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        timer_factory: TimerFactory = thread_timer,
        *,
        debounce_seconds: float = 2.0,
        max_delay_seconds: float = 10.0,
        windows: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self._windows = dict(windows or {})
        for debounce, max_delay in [(debounce_seconds, max_delay_seconds), *self._windows.values()]:
            if debounce < 0 or max_delay < debounce:
                raise ValueError(
                    "the event debounce must be >= 0 and the maximum delay at least the debounce; got "
                    f"debounce_seconds={debounce}, max_delay_seconds={max_delay}"
                )
        self._start_run = start_run
        self._clock = clock
        self._timer_factory = timer_factory
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max_delay_seconds
        self._lock = threading.Condition()
        self._bursts: dict[str, _Burst] = {}
        self._running = 0
        self._closed = False

    def window(self, connection: str) -> tuple[float, float]:
        """The connection's (debounce, max delay) in seconds."""
        return self._windows.get(connection, (self.debounce_seconds, self.max_delay_seconds))

    def notify(self, connection: str) -> None:
        """New dirty deals on `connection`: (re)open its window. Cheap and never calls the CRM."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            burst = self._bursts.get(connection)
            if burst is not None:
                burst.last = now
                return
            timer = self._timer_factory(self.window(connection)[0], lambda: self._fire(connection))
            self._bursts[connection] = _Burst(first=now, last=now, timer=timer)

    def pending(self) -> list[str]:
        """The connections with an open window, sorted."""
        with self._lock:
            return sorted(self._bursts)

    def close(self, wait: bool = True) -> None:
        """Cancel every open window; later notifies are ignored (the service is stopping). With `wait`,
        return once a run under way has ended."""
        with self._lock:
            self._closed = True
            bursts, self._bursts = list(self._bursts.values()), {}
        for burst in bursts:
            burst.timer.cancel()
        if wait:
            with self._lock:
                self._lock.wait_for(lambda: self._running == 0)

    def _due(self, connection: str, burst: _Burst) -> float:
        debounce, max_delay = self.window(connection)
        return min(burst.last + debounce, burst.first + max_delay)

    def _fire(self, connection: str) -> None:
        with self._lock:
            burst = self._bursts.get(connection)
            if burst is None or self._closed:
                return
            now = self._clock()
            due = self._due(connection, burst)
            if now < due:
                # A notify moved the window's end: wait for the rest of it.
                burst.timer = self._timer_factory(due - now, lambda: self._fire(connection))
                return
            del self._bursts[connection]
            self._running += 1
        try:
            self._start_run(connection)
        except LeaseHeldError as exc:
            log.info(
                "event run deferred: the lease is busy",
                connection=connection,
                holder=exc.holder_run_id,
                retry_in_seconds=self.window(connection)[0],
            )
            self.notify(connection)
        except Exception:
            log.exception("event run crashed", connection=connection)
        finally:
            with self._lock:
                self._running -= 1
                self._lock.notify_all()
