"""Client-side pacing of HubSpot calls, so we meet HubSpot's limits instead of collecting 429s.

Two rolling windows: every call counts against the burst limit (per app, per 10 s), and search calls also
against the search limit (per account, per second). HubSpot documents both at
https://developers.hubspot.com/docs/api/usage-details — the search endpoints' own limit is "5 requests per
second" and they do not return the rate-limit headers. Other responses carry `X-HubSpot-RateLimit-Max`,
`-Remaining` and `-Interval-Milliseconds`; when they show fewer calls left than our own count (another process
shares the app), the window is topped up so we slow down too.

A call occupies its slot from the moment it is sent until `interval` after its response arrived: HubSpot
counts arrivals, and measuring from the later instant keeps us under the limit whatever the latency.

Logging stays quiet per call: one INFO `hubspot throttling` line when a call waits longer than
THROTTLE_LOG_SECONDS (never for the search limit's routine sub-second pacing), one INFO `hubspot rate limit
tightened` line (at most once per window interval) when the headers show another process using the app's
allowance, and a WARNING `hubspot rate limit hit` on each 429.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping

import structlog

log = structlog.get_logger()

THROTTLE_LOG_SECONDS = 1.0
"""A wait for a slot up to this long is routine pacing and not logged."""


class Window:
    """At most `limit` calls in any `interval` seconds, counted by completion time."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self._done: deque[float] = deque()
        self._in_flight = 0

    def _expire(self, now: float) -> None:
        while self._done and self._done[0] + self.interval <= now:
            self._done.popleft()

    def wait_time(self, now: float) -> float:
        """Seconds until one more call may be sent (0 when it may go now)."""
        self._expire(now)
        excess = len(self._done) + self._in_flight - self.limit + 1
        if excess <= 0:
            return 0.0
        if excess > len(self._done):
            return self.interval
        return self._done[excess - 1] + self.interval - now

    def start(self) -> None:
        self._in_flight += 1

    def finish(self, now: float) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self._done.append(now)

    def sync_remaining(self, remaining: int, limit: int | None, now: float) -> int:
        """Trust the server when it says fewer calls are left than we think; returns the calls added."""
        if limit is not None and 0 < limit < self.limit:
            self.limit = limit
        self._expire(now)
        used_by_us = len(self._done) + self._in_flight
        server_used = self.limit - max(0, remaining)
        added = max(0, server_used - used_by_us)
        for _ in range(added):
            self._done.append(now)
        return added

    def saturate(self, now: float) -> None:
        """After a 429: behave as if the window were full from now on."""
        self.sync_remaining(0, None, now)

    @property
    def in_window(self) -> int:
        return len(self._done) + self._in_flight


SEARCH = "search"
OTHER = "other"


class RateLimiter:
    """Paces calls of kind SEARCH or OTHER. `clock` is monotonic seconds; `sleep` the only way we wait."""

    def __init__(
        self,
        burst_per_10s: int,
        search_per_second: int,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        self.burst = Window(burst_per_10s, 10.0)
        self.search = Window(search_per_second, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        """Guards the windows; never held while sleeping, so a call that finishes is recorded at once."""
        self._turns = {SEARCH: threading.Lock(), OTHER: threading.Lock()}
        """Held by the one caller of a kind waiting for a slot, so waiters take slots in turn instead of
        racing; a search waiting for its per-second slot does not hold up a write."""
        self.waited = 0.0
        self.peak_burst = 0
        self._tightened_logged_at: dict[str, float] = {}

    def _windows(self, kind: str) -> tuple[Window, ...]:
        return (self.burst, self.search) if kind == SEARCH else (self.burst,)

    def acquire(self, kind: str) -> None:
        """Block (through `sleep`) until a call of this kind fits every window, then take a slot."""
        waited = 0.0
        with self._turns[SEARCH if kind == SEARCH else OTHER]:
            while True:
                with self._lock:
                    now = self._clock()
                    delays = {w: w.wait_time(now) for w in self._windows(kind)}
                    delay = max(delays.values())
                    if delay <= 0:
                        for window in self._windows(kind):
                            window.start()
                        self.peak_burst = max(self.peak_burst, self.burst.in_window)
                        break
                    self.waited += delay
                    if waited <= THROTTLE_LOG_SECONDS < waited + delay:
                        binding = max(delays, key=lambda w: delays[w])
                        log.info(
                            "hubspot throttling",
                            kind=kind,
                            window=self._name(binding),
                            wait_s=round(waited + delay, 3),
                            limit=binding.limit,
                            interval_s=binding.interval,
                            in_window=binding.in_window,
                        )
                    waited += delay
                self._sleep(delay)

    def release(self, kind: str, headers: Mapping[str, str] | None = None) -> None:
        """The call's response (or failure) arrived; adjust from its rate-limit headers when present."""
        with self._lock:
            now = self._clock()
            for window in self._windows(kind):
                window.finish(now)
            if headers:
                self._observe(headers, now)

    def throttled(self, kind: str, policy_name: str | None) -> None:
        """HubSpot answered 429: treat the window it names as full."""
        with self._lock:
            now = self._clock()
            window = (
                self.search
                if policy_name == "SECONDLY" or (policy_name is None and kind == SEARCH)
                else self.burst
            )
            window.saturate(now)
            log.warning(
                "hubspot rate limit hit",
                status=429,
                kind=kind,
                policy=policy_name,
                window=self._name(window),
                limit=window.limit,
            )

    def _observe(self, headers: Mapping[str, str], now: float) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        remaining = _int(lowered.get("x-hubspot-ratelimit-remaining"))
        interval_ms = _int(lowered.get("x-hubspot-ratelimit-interval-milliseconds"))
        limit = _int(lowered.get("x-hubspot-ratelimit-max"))
        if remaining is None:
            return
        window = self.search if interval_ms is not None and interval_ms <= 1000 else self.burst
        added = window.sync_remaining(remaining, limit, now)
        name = self._name(window)
        last = self._tightened_logged_at.get(name)
        if added and (last is None or now - last >= window.interval):
            self._tightened_logged_at[name] = now
            log.info(
                "hubspot rate limit tightened",
                window=name,
                remaining=remaining,
                limit=window.limit,
                counted_for_others=added,
            )

    def _name(self, window: Window) -> str:
        return "search" if window is self.search else "burst"


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
