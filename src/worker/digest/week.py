"""ISO weeks as the digest names them: `2026-W49` (ISO 8601 year and week, Monday first)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, order=True, slots=True)
class IsoWeek:
    """One ISO week; `str()` is its `YYYY-Www` name."""

    year: int
    week: int

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """`YYYY-Www` (e.g. 2026-W49); ValueError saying the form, or naming a week the year lacks."""
        found = _WEEK.match(text.strip())
        if found is None:
            raise ValueError(f"{text!r} is not an ISO week: write YYYY-Www, e.g. 2026-W49")
        year, week = int(found.group(1)), int(found.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise ValueError(f"{text!r}: {year} has no ISO week {week}") from None
        return cls(year, week)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"
