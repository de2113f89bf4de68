"""The seed stories, deterministic by seed value and relative to the sandbox clock's start.

``track-selling`` tells the POC story of issue 3 §6: 85 open POCs (65 missing at least one BANT criterion in
varied, realistic ways, 20 fully qualified), 48 open ordinary deals across stages and owners, and the closed
history that motivated the product (65 unqualified POCs of which 3 won; 20 qualified POCs of which 16 won).
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
from sandbox.seeds.model import LOST, OPEN_STAGE_COUNT, WON, SeedDeal, Story

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

    def qualified(self) -> Bant:
        random_ = self.rng.random
        amount_k = self.between(4, 80) * 5
        if random_() < 0.3:
            budget = str(amount_k * 1000)
        else:
            budget = f"${amount_k}k approved in {self._fiscal} {self.pick(DEPARTMENTS)} budget"
        first, last, title = self.pick(BUYERS)
        if random_() < 0.6:
            timing = (self.today + timedelta(days=self.between(14, 180))).isoformat()
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

    def missing(self, pattern: int) -> Bant:
        values = list(self.qualified())
        for criterion in MISSING_PATTERNS[pattern % len(MISSING_PATTERNS)]:
            style = self.pick(MISSING_STYLES[criterion])
            if style == "PAST":
                style = sys.intern((self.today - timedelta(days=self.between(5, 120))).isoformat())
            values[_CRITERIA.index(criterion)] = style
        return values[0], values[1], values[2], values[3]

    def open_deal(self, name: str, kind: str, stage: int, owner: int, bant: Bant) -> SeedDeal:
        age_ms = self.between(20 * _DAY_MS, 200 * _DAY_MS)
        created = self.now - timedelta(milliseconds=age_ms)
        modified = created + timedelta(milliseconds=self.between(0, max(1, age_ms - 3_600_000)))
        close = self._day(self.today + timedelta(days=self.between(10, 150)))
        return SeedDeal(name, owner, stage, kind, self._amount(kind), close, created, modified, *bant)

    def closed_deal(self, name: str, kind: str, won: bool, owner: int, bant: Bant) -> SeedDeal:
        close = self.today - timedelta(days=self.between(15, 400))
        created = datetime.combine(close, datetime.min.time(), self.now.tzinfo) - timedelta(
            days=self.between(30, 120)
        )
        modified = datetime.combine(close, datetime.min.time(), self.now.tzinfo) + timedelta(
            milliseconds=self.between(8 * 3_600_000, 20 * 3_600_000)
        )
        return SeedDeal(
            name,
            owner,
            WON if won else LOST,
            kind,
            self._amount(kind),
            close,
            created,
            min(modified, self.now),
            *bant,
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
        bant = writer.missing(i) if unqualified else writer.qualified()
        deals.append(writer.closed_deal(f"{company} — {product} POC", "POC", won, next(owners), bant))
    return Story(deals=tuple(deals))


def synthetic(count: int, seed_value: int, now: datetime) -> Story:
    """``count`` open deals: ~30% POCs (a quarter of them qualified), the rest half qualified."""
    writer = _Writer(seed_value, now)
    rng = writer.rng
    deals = []
    companies, products = len(COMPANIES), len(PRODUCTS)
    for i in range(count):
        roll = rng.random()
        kind = "POC" if roll < 0.3 else ("New" if roll < 0.75 else "Existing")
        qualified = rng.random() < (0.25 if kind == "POC" else 0.5)
        bant = writer.qualified() if qualified else writer.missing(writer.between(0, len(MISSING_PATTERNS)))
        name = f"{COMPANIES[i % companies]} — {PRODUCTS[(i // companies) % products]} #{i + 1}"
        suffix = " POC" if kind == "POC" else ""
        stage, owner = writer.between(0, OPEN_STAGE_COUNT), writer.between(0, len(REPS))
        deals.append(writer.open_deal(name + suffix, kind, stage, owner, bant))
    return Story(deals=tuple(deals))
