"""EventCoalescer: a trailing debounce per connection, capped at a maximum delay from the first event of a
burst, one run per window; a busy lease retries one window later. Time is driven by hand: no test sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from worker.config.settings import ScheduleSettings
from worker.events import EventCoalescer
from worker.state import LeaseHeldError


class FakeTimer:
    def __init__(self, clock: ManualClock, due: float, callback: Callable[[], None]) -> None:
        self.due, self.callback, self.cancelled = due, callback, False
        self._clock = clock

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A monotonic clock and a timer factory: `advance` fires the timers that came due, in due order."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[FakeTimer] = []

    def __call__(self) -> float:
        return self.now

    def timer(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.due <= target]
            if not due:
                break
            first = min(due, key=lambda t: t.due)
            self.timers.remove(first)
            self.now = max(self.now, first.due)
            first.callback()
        self.now = target

    def armed(self) -> int:
        return sum(1 for t in self.timers if not t.cancelled)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def _coalescer(clock: ManualClock, runs: list[tuple[str, float]], **kw: float) -> EventCoalescer:
    return EventCoalescer(lambda c: runs.append((c, clock.now)), clock, clock.timer, **kw)


def test_one_event_runs_once_after_the_debounce_window(clock: ManualClock) -> None:
    runs: list[tuple[str, float]] = []
    coalescer = _coalescer(clock, runs)
    coalescer.notify("hs")
    clock.advance(1.9)
    assert runs == []
    clock.advance(0.1)
    assert runs == [("hs", 102.0)]
    clock.advance(60)
    assert runs == [("hs", 102.0)] and clock.armed() == 0 and coalescer.pending() == []


def test_a_burst_is_one_run_after_the_last_event(clock: ManualClock) -> None:
    runs: list[tuple[str, float]] = []
    coalescer = _coalescer(clock, runs)
    for _ in range(4):
        coalescer.notify("hs")
        clock.advance(1.5)
    assert runs == []
    clock.advance(0.5)
    assert runs == [("hs", 106.5)]


def test_a_steady_stream_runs_at_the_maximum_delay_after_its_first_event(clock: ManualClock) -> None:
    runs: list[tuple[str, float]] = []
    coalescer = _coalescer(clock, runs, debounce_seconds=2.0, max_delay_seconds=10.0)
    for _ in range(30):
        coalescer.notify("hs")
        clock.advance(1.0)
    assert [at for _, at in runs] == [110.0, 120.0, 130.0]


def test_connections_have_their_own_windows(clock: ManualClock) -> None:
    runs: list[tuple[str, float]] = []
    coalescer = _coalescer(clock, runs)
    coalescer.notify("hs")
    clock.advance(1.0)
    coalescer.notify("sf")
    clock.advance(1.0)
    assert runs == [("hs", 102.0)]
    clock.advance(1.0)
    assert runs == [("hs", 102.0), ("sf", 103.0)]


def test_a_busy_lease_tries_again_one_window_later(clock: ManualClock) -> None:
    attempts: list[float] = []

    def start(connection: str) -> None:
        attempts.append(clock.now)
        if len(attempts) < 3:
            raise LeaseHeldError("r1", datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=1), connection)

    coalescer = EventCoalescer(start, clock, clock.timer)
    coalescer.notify("hs")
    clock.advance(10)
    assert attempts == [102.0, 104.0, 106.0]
    assert coalescer.pending() == []


def test_another_failure_is_logged_and_the_next_event_runs_again(clock: ManualClock) -> None:
    attempts: list[float] = []

    def start(connection: str) -> None:
        attempts.append(clock.now)
        raise RuntimeError("CRM down")

    coalescer = EventCoalescer(start, clock, clock.timer)
    coalescer.notify("hs")
    clock.advance(30)
    assert attempts == [102.0]
    coalescer.notify("hs")
    clock.advance(2)
    assert attempts == [102.0, 132.0]


def test_an_event_during_a_run_opens_a_new_window(clock: ManualClock) -> None:
    runs: list[float] = []
    coalescer: EventCoalescer

    def start(connection: str) -> None:
        runs.append(clock.now)
        if len(runs) == 1:
            coalescer.notify(connection)

    coalescer = EventCoalescer(start, clock, clock.timer)
    coalescer.notify("hs")
    clock.advance(10)
    assert runs == [102.0, 104.0]


def test_close_cancels_open_windows_and_ignores_later_events(clock: ManualClock) -> None:
    runs: list[tuple[str, float]] = []
    coalescer = _coalescer(clock, runs)
    coalescer.notify("hs")
    coalescer.close()
    coalescer.notify("sf")
    clock.advance(30)
    assert runs == [] and clock.armed() == 0


def test_a_maximum_delay_below_the_debounce_is_refused(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="maximum delay"):
        EventCoalescer(lambda c: None, clock, clock.timer, debounce_seconds=5.0, max_delay_seconds=1.0)


def test_a_connection_can_have_its_own_window(clock: ManualClock) -> None:
    runs: list[tuple[str, float]] = []
    coalescer = EventCoalescer(
        lambda c: runs.append((c, clock.now)), clock, clock.timer, windows={"sf": (5.0, 6.0)}
    )
    coalescer.notify("hs")
    coalescer.notify("sf")
    clock.advance(4.0)
    coalescer.notify("sf")
    clock.advance(10.0)
    assert runs == [("hs", 102.0), ("sf", 106.0)]
    assert coalescer.window("sf") == (5.0, 6.0) and coalescer.window("hs") == (2.0, 10.0)


def test_close_waits_for_a_run_under_way(clock: ManualClock) -> None:
    started, release, closed = threading.Event(), threading.Event(), threading.Event()

    def start(connection: str) -> None:
        started.set()
        release.wait(5)

    coalescer = EventCoalescer(start, clock, clock.timer)
    coalescer.notify("hs")
    runner = threading.Thread(target=clock.advance, args=(3.0,))
    runner.start()
    assert started.wait(5)
    closer = threading.Thread(target=lambda: (coalescer.close(), closed.set()))
    closer.start()
    assert not closed.wait(0.05)
    release.set()
    assert closed.wait(5)
    runner.join(5)
    closer.join(5)


def test_the_connection_event_windows_are_checked_when_settings_load() -> None:
    assert (ScheduleSettings().event_debounce_seconds, ScheduleSettings().event_max_delay_seconds) == (
        2.0,
        10.0,
    )
    with pytest.raises(ValueError, match="event_max_delay_seconds"):
        ScheduleSettings(event_debounce_seconds=5.0, event_max_delay_seconds=1.0)
    with pytest.raises(ValueError, match="event_debounce_seconds"):
        ScheduleSettings(event_debounce_seconds=-1.0)
