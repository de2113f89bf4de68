"""A clock that moves with real time plus whatever the code under test 'slept', so pacing and backoff
resolve instantly without real waiting (tests never sleep for real seconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeTime:
    def __init__(self, shift: timedelta = timedelta()) -> None:
        self.shift = shift
        self.slept = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift + timedelta(seconds=self.slept)

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)
