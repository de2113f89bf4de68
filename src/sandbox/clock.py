"""The sandbox clock: every modstamp, rate-limit window and search-lag cut-off reads it.

It starts at the real UTC time (or a chosen start) and moves with real time unless frozen; tests move it
with :meth:`SandboxClock.advance` or :meth:`SandboxClock.set` so that nothing ever sleeps for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _truncate_ms(moment: datetime) -> datetime:
    """Both CRMs store milliseconds; keeping the same precision makes values round-trip exactly."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class SandboxClock:
    """A thread-safe controllable UTC clock."""

    def __init__(
        self, start: datetime | None = None, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError(
                "the sandbox clock needs a tz-aware start time; pass e.g. datetime(..., tzinfo=UTC)"
            )
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._anchor = monotonic()
        self._frozen = False

    def now(self) -> datetime:
        """The current sandbox time, tz-aware UTC, to the millisecond."""
        with self._lock:
            return _truncate_ms(self._current())

    def epoch(self) -> float:
        """The current sandbox time as POSIX seconds (for rate-limit windows)."""
        with self._lock:
            return self._current().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, with a negative value) and return the new time."""
        with self._lock:
            self._base = self._current() + timedelta(seconds=seconds)
            self._anchor = self._monotonic()
            return _truncate_ms(self._base)

    def set(self, when: datetime) -> None:
        """Jump to an absolute tz-aware time."""
        if when.tzinfo is None:
            raise ValueError("SandboxClock.set needs a tz-aware datetime")
        with self._lock:
            self._base = when.astimezone(UTC)
            self._anchor = self._monotonic()

    def freeze(self) -> None:
        """Stop following real time; only advance/set move the clock afterwards."""
        with self._lock:
            self._base = self._current()
            self._frozen = True

    def unfreeze(self) -> None:
        """Follow real time again from the current sandbox time."""
        with self._lock:
            self._base = self._current()
            self._anchor = self._monotonic()
            self._frozen = False

    @property
    def frozen(self) -> bool:
        return self._frozen

    def _current(self) -> datetime:
        if self._frozen:
            return self._base
        return self._base + timedelta(seconds=self._monotonic() - self._anchor)
