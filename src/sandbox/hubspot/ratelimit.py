"""HubSpot's rolling rate limits on the sandbox clock.

Private apps get a burst allowance per 10 seconds (100-190 by tier) reported in ``X-HubSpot-RateLimit-Max``,
``-Remaining`` and ``-Interval-Milliseconds``; search has its own per-second limit (HubSpot docs, "API usage
guidelines and limits"). A refused call gets 429 with ``policyName`` TEN_SECONDLY_ROLLING or SECONDLY and a
``Retry-After`` in seconds.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

from sandbox.http import Response
from sandbox.hubspot.errors import rate_limited

DAILY_LIMIT = 500_000


class RollingWindow:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._calls: deque[float] = deque()

    def acquire(self, now: float, enforce: bool) -> tuple[bool, int, float]:
        """(admitted, remaining, seconds until a slot frees)."""
        while self._calls and self._calls[0] <= now - self.window_s:
            self._calls.popleft()
        if self._calls and self._calls[-1] > now:
            self._calls.clear()  # the clock was set back: start the window afresh
        wait = self._calls[0] + self.window_s - now if len(self._calls) >= self.limit else 0.0
        if enforce and len(self._calls) >= self.limit:
            return False, 0, wait
        self._calls.append(now)
        return True, max(0, self.limit - len(self._calls)), wait

    def reset(self) -> None:
        self._calls.clear()


class RateLimiter:
    def __init__(
        self, burst_per_10s: int, search_per_second: int, enforce: bool, now: Callable[[], float]
    ) -> None:
        self._lock = threading.Lock()
        self._burst = RollingWindow(burst_per_10s, 10.0)
        self._search = RollingWindow(search_per_second, 1.0)
        self._enforce = enforce
        self._now = now
        self._daily_used = 0

    def admit(self, search: bool) -> tuple[Response | None, tuple[tuple[str, str], ...]]:
        with self._lock:
            now = self._now()
            if search:
                ok, _, wait = self._search.acquire(now, self._enforce)
                if ok:
                    return None, ()
                return rate_limited("SECONDLY", "You have reached your secondly limit.", _retry(wait), ()), ()
            ok, remaining, wait = self._burst.acquire(now, self._enforce)
            if ok:
                self._daily_used += 1
            headers = (
                ("X-HubSpot-RateLimit-Max", str(self._burst.limit)),
                ("X-HubSpot-RateLimit-Remaining", str(remaining)),
                ("X-HubSpot-RateLimit-Interval-Milliseconds", "10000"),
                ("X-HubSpot-RateLimit-Daily", str(DAILY_LIMIT)),
                ("X-HubSpot-RateLimit-Daily-Remaining", str(max(0, DAILY_LIMIT - self._daily_used))),
            )
            if ok:
                return None, headers
            message = "You have reached your ten_secondly_rolling limit."
            return rate_limited("TEN_SECONDLY_ROLLING", message, _retry(wait), headers), ()

    def reset(self) -> None:
        with self._lock:
            self._burst.reset()
            self._search.reset()
            self._daily_used = 0


def _retry(wait: float) -> int:
    return max(1, math.ceil(wait))
