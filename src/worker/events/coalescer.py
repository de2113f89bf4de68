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

The clock (monotonic seconds) and the timer factory are injected, so tests drive time by hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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
    ) -> None:
        if debounce_seconds < 0 or max_delay_seconds < debounce_seconds:
            raise ValueError(
                "the event debounce must be >= 0 and the maximum delay at least the debounce; got "
                f"debounce_seconds={debounce_seconds}, max_delay_seconds={max_delay_seconds}"
            )
        self._start_run = start_run
        self._clock = clock
        self._timer_factory = timer_factory
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max_delay_seconds
        self._lock = threading.Lock()
        self._bursts: dict[str, _Burst] = {}
        self._closed = False

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
            timer = self._timer_factory(self.debounce_seconds, lambda: self._fire(connection))
            self._bursts[connection] = _Burst(first=now, last=now, timer=timer)

    def pending(self) -> list[str]:
        """The connections with an open window, sorted."""
        with self._lock:
            return sorted(self._bursts)

    def close(self) -> None:
        """Cancel every open window; later notifies are ignored (the service is stopping)."""
        with self._lock:
            self._closed = True
            bursts, self._bursts = list(self._bursts.values()), {}
        for burst in bursts:
            burst.timer.cancel()

    def _due(self, burst: _Burst) -> float:
        return min(burst.last + self.debounce_seconds, burst.first + self.max_delay_seconds)

    def _fire(self, connection: str) -> None:
        with self._lock:
            burst = self._bursts.get(connection)
            if burst is None or self._closed:
                return
            now = self._clock()
            due = self._due(burst)
            if now < due:
                # A notify moved the window's end: wait for the rest of it.
                burst.timer = self._timer_factory(due - now, lambda: self._fire(connection))
                return
            del self._bursts[connection]
        try:
            self._start_run(connection)
        except LeaseHeldError as exc:
            log.info(
                "event run deferred: the lease is busy",
                connection=connection,
                holder=exc.holder_run_id,
                retry_in_seconds=self.debounce_seconds,
            )
            self.notify(connection)
        except Exception:
            log.exception("event run crashed", connection=connection)
