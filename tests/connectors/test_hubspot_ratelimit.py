"""Client-side pacing of HubSpot calls: burst and search windows, header sync, 429 saturation."""

from __future__ import annotations

import threading

import pytest

from connectors.hubspot.ratelimit import OTHER, SEARCH, RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _max_in_any_window(stamps: list[float], interval: float) -> int:
    best = 0
    for i, start in enumerate(stamps):
        count = sum(1 for s in stamps[i:] if s < start + interval)
        best = max(best, count)
    return best


@pytest.mark.parametrize(
    ("kind", "calls", "latency", "burst", "search"),
    [
        pytest.param(OTHER, 350, 0.0, 100, 4, id="burst-only-zero-latency"),
        pytest.param(OTHER, 350, 0.15, 100, 4, id="burst-only-with-latency"),
        pytest.param(SEARCH, 60, 0.02, 100, 4, id="search-per-second"),
    ],
)
def test_calls_never_exceed_either_window(
    kind: str, calls: int, latency: float, burst: int, search: int
) -> None:
    """Whatever the latency, arrivals never exceed the burst limit per 10 s nor the search limit per 1 s."""
    t = FakeTime()
    limiter = RateLimiter(burst, search, clock=t.clock, sleep=t.sleep)
    arrivals: list[float] = []
    for _ in range(calls):
        limiter.acquire(kind)
        t.now += latency / 2
        arrivals.append(t.now)
        t.now += latency / 2
        limiter.release(kind)
    assert _max_in_any_window(arrivals, 10.0) <= burst
    if kind == SEARCH:
        assert _max_in_any_window(arrivals, 1.0) <= search
    assert limiter.peak_burst <= burst


def test_pacing_is_not_slower_than_the_limit_allows() -> None:
    """300 calls at 100 per 10 s take just over 20 s of (fake) time: pacing does not over-throttle."""
    t = FakeTime()
    limiter = RateLimiter(100, 4, clock=t.clock, sleep=t.sleep)
    start = t.now
    for _ in range(300):
        limiter.acquire(OTHER)
        limiter.release(OTHER)
    assert 20.0 <= t.now - start <= 20.5


def test_search_floor_is_the_per_second_limit() -> None:
    """40 searches at 4/s take about 9 s: the first 4 go at once, then 4 per second."""
    t = FakeTime()
    limiter = RateLimiter(190, 4, clock=t.clock, sleep=t.sleep)
    start = t.now
    for _ in range(40):
        limiter.acquire(SEARCH)
        limiter.release(SEARCH)
    assert 9.0 <= t.now - start <= 9.5


def test_headers_showing_less_remaining_slow_us_down() -> None:
    """When HubSpot reports fewer calls left than our count (another process), we wait for the window."""
    t = FakeTime()
    limiter = RateLimiter(100, 4, clock=t.clock, sleep=t.sleep)
    limiter.acquire(OTHER)
    headers = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    limiter.release(OTHER, headers)
    limiter.acquire(OTHER)
    assert t.slept and sum(t.slept) == pytest.approx(10.0)


def test_headers_lower_the_configured_limit() -> None:
    """A Max header below our setting becomes the limit; a higher one is ignored."""
    t = FakeTime()
    limiter = RateLimiter(100, 4, clock=t.clock, sleep=t.sleep)
    limiter.acquire(OTHER)
    limiter.release(OTHER, {"x-hubspot-ratelimit-max": "50", "x-hubspot-ratelimit-remaining": "49"})
    assert limiter.burst.limit == 50
    limiter.acquire(OTHER)
    limiter.release(OTHER, {"x-hubspot-ratelimit-max": "190", "x-hubspot-ratelimit-remaining": "188"})
    assert limiter.burst.limit == 50


@pytest.mark.parametrize(
    ("policy", "kind", "expected_wait"),
    [
        pytest.param("TEN_SECONDLY_ROLLING", OTHER, 10.0, id="burst-429"),
        pytest.param("SECONDLY", SEARCH, 1.0, id="search-429"),
    ],
)
def test_429_saturates_the_named_window(policy: str, kind: str, expected_wait: float) -> None:
    """After a 429 the window HubSpot named counts as full, so the next call waits out its interval."""
    t = FakeTime()
    limiter = RateLimiter(100, 4, clock=t.clock, sleep=t.sleep)
    limiter.acquire(kind)
    limiter.release(kind)
    limiter.throttled(kind, policy)
    limiter.acquire(kind)
    assert sum(t.slept) == pytest.approx(expected_wait)


def test_a_call_that_finishes_while_another_waits_is_recorded_at_once() -> None:
    """While one thread sleeps waiting for a slot, another thread's finished call is released right away
    (stamped at its own time), and a search waiting for its per-second slot does not hold up a write."""
    time = FakeTime()
    released = threading.Event()
    wrote = threading.Event()

    def other_thread() -> None:
        limiter.release(OTHER)
        released.set()
        limiter.acquire(OTHER)
        wrote.set()

    def sleep(seconds: float) -> None:
        helper = threading.Thread(target=other_thread)
        helper.start()
        assert released.wait(timeout=10), "release blocked by the waiting search"
        assert wrote.wait(timeout=10), "a write waited behind the search"
        helper.join()
        time.sleep(seconds)

    limiter = RateLimiter(100, 1, clock=time.clock, sleep=sleep)
    limiter.acquire(SEARCH)
    limiter.release(SEARCH)
    limiter.acquire(OTHER)
    limiter.acquire(SEARCH)
    assert time.slept == [1.0]
    assert limiter.search.in_window == 1 and limiter.burst.in_window == 4
