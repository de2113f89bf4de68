"""The seed stories, deterministic by seed value and relative to the sandbox clock's start.

``track-selling`` tells the POC story of issue 3 §6: 85 open POCs (65 missing at least one BANT criterion in
varied, realistic ways, 20 fully qualified), 48 open ordinary deals across stages and owners, and the closed
history that motivated the product (65 unqualified POCs of which 3 won; 20 qualified POCs of which 16 won).
Qualification is judged when a POC started: the closed POCs carry field history, and the values they closed
with tell a different story (14 of the unqualified ones had BANT filled in during the POC, 4 qualified ones
had a criterion cleared before close), so only a report that reads history gets 65/3 and 20/16.
``synthetic`` makes N open deals with a similar mix, for scale.
"""

from __future__ import annotations

import itertools
import random
import sys
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import TypeVar

from sandbox.seeds.catalog import (
    BUYERS,
    COMPANIES,
    DEPARTMENTS,
    MISSING_PATTERNS,
    MISSING_STYLES,
    NEEDS,
    PRODUCTS,
    REPS,
)
from sandbox.seeds.model import LOST, OPEN_STAGE_COUNT, WON, SeedChange, SeedDeal, Story

_DAY_MS = 86_400_000
_CRITERIA = ("budget", "authority", "need", "timing")
Bant = tuple[str | None, str | None, str | None, str | None]
T = TypeVar("T")


class _Writer:
    """Random choices via ``random()`` scaled by hand: several times faster than randrange/choice at scale."""

    def __init__(self, seed_value: int, now: datetime) -> None:
        self.rng = random.Random(seed_value)
        self.now = now
        self.today = now.date()
        quarter = (self.today.month - 1) // 3 + 1
        self._timeframe = f"Decision by end of Q{quarter % 4 + 1} {self.today.year + (quarter == 4)}"
        self._fiscal = f"FY{self.today.year % 100 + 1}"
        self._days: dict[date, date] = {}

    def between(self, low: int, high: int) -> int:
        return low + int(self.rng.random() * (high - low))

    def pick(self, options: Sequence[T]) -> T:
        return options[int(self.rng.random() * len(options))]

    def qualified(self, today: date | None = None) -> Bant:
        """BANT a rep would write on `today` (default: the story's today): timing dates lie ahead of it."""
        random_ = self.rng.random
        amount_k = self.between(4, 80) * 5
        if random_() < 0.3:
            budget = str(amount_k * 1000)
        else:
            budget = f"${amount_k}k approved in {self._fiscal} {self.pick(DEPARTMENTS)} budget"
        first, last, title = self.pick(BUYERS)
        if random_() < 0.6:
            timing = ((today or self.today) + timedelta(days=self.between(14, 180))).isoformat()
        else:
            timing = self._timeframe
        # A few thousand distinct texts among 100,000 deals: one string each, held by every record (and
        # both CRMs) that carries it, instead of one per deal (about 20 MB per CRM at 100,000 deals).
        return (
            sys.intern(budget),
            sys.intern(f"{first} {last} ({title})"),
            self.pick(NEEDS),
            sys.intern(timing),
        )

    def missing(self, pattern: int, today: date | None = None) -> Bant:
        """BANT with the criteria of one missing pattern left out, as of `today` (a PAST timing before it)."""
        values = list(self.qualified(today))
        for criterion in MISSING_PATTERNS[pattern % len(MISSING_PATTERNS)]:
            style = self.pick(MISSING_STYLES[criterion])
            if style == "PAST":
                past = (today or self.today) - timedelta(days=self.between(5, 120))
                style = sys.intern(past.isoformat())
            values[_CRITERIA.index(criterion)] = style
        return values[0], values[1], values[2], values[3]

    def open_deal(self, name: str, kind: str, stage: int, owner: int, bant: Bant) -> SeedDeal:
        age_ms = self.between(20 * _DAY_MS, 200 * _DAY_MS)
        created = self.now - timedelta(milliseconds=age_ms)
        modified = created + timedelta(milliseconds=self.between(0, max(1, age_ms - 3_600_000)))
        close = self._day(self.today + timedelta(days=self.between(10, 150)))
        return SeedDeal(name, owner, stage, kind, self._amount(kind), close, created, modified, *bant)

    def mix(self) -> tuple[str, bool]:
        """A synthetic deal's kind (~30% POCs), and whether it is qualified (25% of POCs, 50% of others)."""
        roll = self.rng.random()
        kind = "POC" if roll < 0.3 else ("New" if roll < 0.75 else "Existing")
        return kind, self.rng.random() < (0.25 if kind == "POC" else 0.5)

    def closed_dates(self) -> tuple[date, datetime, int]:
        """A close 15 to 350 days ago (its day, and 09:00 on it) after 30 to 120 days open."""
        close = self.today - timedelta(days=self.between(15, 350))
        closed_at = datetime.combine(close, datetime.min.time(), self.now.tzinfo) + timedelta(hours=9)
        return close, closed_at, self.between(30, 120)

    def closed_deal(
        self,
        name: str,
        kind: str,
        won: bool,
        owner: int,
        bant: tuple[Bant, Bant],
        dates: tuple[date, datetime, int],
    ) -> SeedDeal:
        """A deal closed on `dates`, moved through two stages on its way, with each BANT field that differs
        between entry and close (`bant`) changed on one day in between."""
        close, closed_at, open_days = dates
        at_entry, at_close = bant
        created = closed_at - timedelta(days=open_days, hours=9)
        modified = closed_at + timedelta(milliseconds=self.between(0, 11 * 3_600_000))
        end = WON if won else LOST
        changes = [
            SeedChange("stage", "0", "3", created + timedelta(days=open_days // 3)),
            SeedChange("stage", "3", "6", created + timedelta(days=2 * open_days // 3)),
            SeedChange("stage", "6", str(end), closed_at),
        ]
        for criterion, old, new in zip(_CRITERIA, at_entry, at_close, strict=True):
            if old != new:
                day = self.between(2, open_days - 2)
                changes.append(SeedChange(criterion, old, new, created + timedelta(days=day, hours=3)))
        changes.sort(key=lambda c: c.at)
        return SeedDeal(
            name,
            owner,
            end,
            kind,
            self._amount(kind),
            close,
            created,
            min(modified, self.now),
            *at_close,
            changes=tuple(changes),
        )

    def _day(self, day: date) -> date:
        """One object per distinct close date (about 140 among 100,000 open deals)."""
        return self._days.setdefault(day, day)

    def _amount(self, kind: str) -> int:
        low, high = (15, 60) if kind == "POC" else (20, 400)
        return self.between(low, high) * 1000


def track_selling(seed_value: int, now: datetime) -> Story:
    writer = _Writer(seed_value, now)
    rng = writer.rng
    combos = list(itertools.product(COMPANIES, PRODUCTS))
    names = iter(rng.sample(combos, 85 + 48 + 85))
    owners = itertools.cycle(range(len(REPS)))
    deals: list[SeedDeal] = []
    for i in range(85):
        company, product = next(names)
        bant = writer.missing(i) if i < 65 else writer.qualified()
        stage = rng.randrange(1, OPEN_STAGE_COUNT)
        deals.append(writer.open_deal(f"{company} — {product} POC", "POC", stage, next(owners), bant))
    for i in range(48):
        company, product = next(names)
        kind = "New" if i % 3 else "Existing"
        bant = writer.missing(i + 3) if i % 2 else writer.qualified()
        deals.append(
            writer.open_deal(f"{company} — {product}", kind, i % OPEN_STAGE_COUNT, next(owners), bant)
        )
    for i in range(85):
        company, product = next(names)
        unqualified = i < 65
        won = i < 3 if unqualified else i < 65 + 16
        dates = writer.closed_dates()
        entry_day = (dates[1] - timedelta(days=dates[2], hours=9)).date()
        at_entry = writer.missing(i, entry_day) if unqualified else writer.qualified(entry_day)
        at_close = at_entry
        if i < 2 or 50 <= i < 62:
            at_close = _filled_in(at_entry, writer.qualified(), i)
        elif 70 <= i < 74:
            at_close = ("TBD", *at_entry[1:])
        name = f"{company} — {product} POC"
        deals.append(writer.closed_deal(name, "POC", won, next(owners), (at_entry, at_close), dates))
    return Story(deals=tuple(deals))


def _filled_in(before: Bant, qualified: Bant, pattern: int) -> Bant:
    """What a rep typed in later: each criterion missing(pattern) left out now holds a qualified value."""
    gaps = MISSING_PATTERNS[pattern % len(MISSING_PATTERNS)]
    budget, authority, need, timing = (
        good if criterion in gaps else kept
        for criterion, kept, good in zip(_CRITERIA, before, qualified, strict=True)
    )
    return budget, authority, need, timing


def _synthetic_name(i: int, kind: str, tag: str) -> str:
    company, product = COMPANIES[i % len(COMPANIES)], PRODUCTS[(i // len(COMPANIES)) % len(PRODUCTS)]
    return f"{company} — {product} {tag}{i + 1}{' POC' if kind == 'POC' else ''}"


def synthetic(count: int, seed_value: int, now: datetime) -> Story:
    """``count`` open deals: ~30% POCs (a quarter of them qualified), the rest half qualified."""
    writer = _Writer(seed_value, now)
    deals = []
    for i in range(count):
        kind, qualified = writer.mix()
        bant = writer.qualified() if qualified else writer.missing(writer.between(0, len(MISSING_PATTERNS)))
        stage, owner = writer.between(0, OPEN_STAGE_COUNT), writer.between(0, len(REPS))
        deals.append(writer.open_deal(_synthetic_name(i, kind, "#"), kind, stage, owner, bant))
    return Story(deals=tuple(deals))


def synthetic_closed(count: int, seed_value: int, now: datetime) -> Story:
    """``count`` closed deals with field history, for the outcome report at scale: ~30% POCs. Qualified at
    entry (a quarter of POCs, half of the rest) they win 80% (POCs) or 40%; unqualified 5% or 15%. One in
    ten unqualified ones had BANT filled in during the deal, as in ``track-selling``."""
    writer = _Writer(seed_value + 1, now)
    rng = writer.rng
    deals = []
    for i in range(count):
        kind, qualified = writer.mix()
        win_rate = (0.8 if qualified else 0.05) if kind == "POC" else (0.4 if qualified else 0.15)
        won = rng.random() < win_rate
        dates = writer.closed_dates()
        entry_day = (dates[1] - timedelta(days=dates[2], hours=9)).date()
        pattern = writer.between(0, len(MISSING_PATTERNS))
        at_entry = writer.qualified(entry_day) if qualified else writer.missing(pattern, entry_day)
        at_close = at_entry
        if not qualified and rng.random() < 0.1:
            at_close = _filled_in(at_entry, writer.qualified(), pattern)
        owner = writer.between(0, len(REPS))
        name = _synthetic_name(i, kind, "closed #")
        deals.append(writer.closed_deal(name, kind, won, owner, (at_entry, at_close), dates))
    return Story(deals=tuple(deals))
