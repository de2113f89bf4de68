"""The seed stories, deterministic by seed value and relative to the sandbox clock's start.

``track-selling`` tells the POC story of issue 3 §6: 85 open POCs (65 missing at least one BANT criterion in
varied, realistic ways, 20 fully qualified), 48 open ordinary deals across stages and owners, and the closed
history that motivated the product (65 unqualified POCs of which 3 won; 20 qualified POCs of which 16 won).
``synthetic`` makes N open deals with a similar mix, for scale.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

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
Bant = tuple[str | None, str | None, str | None, str | None]


class _Writer:
    def __init__(self, seed_value: int, now: datetime) -> None:
        self.rng = random.Random(seed_value)
        self.now = now
        self.today = now.date()

    def qualified(self) -> Bant:
        rng = self.rng
        amount_k = rng.randrange(20, 400, 5)
        if rng.random() < 0.3:
            budget = str(amount_k * 1000)
        else:
            budget = (
                f"${amount_k}k approved in FY{self.today.year % 100 + 1} {rng.choice(DEPARTMENTS)} budget"
            )
        first, last, title = rng.choice(BUYERS)
        if rng.random() < 0.6:
            timing = (self.today + timedelta(days=rng.randrange(14, 180))).isoformat()
        else:
            quarter = (self.today.month - 1) // 3 + 1
            timing = f"Decision by end of Q{quarter % 4 + 1} {self.today.year + (quarter == 4)}"
        return budget, f"{first} {last} ({title})", rng.choice(NEEDS), timing

    def missing(self, pattern: int) -> Bant:
        values = list(self.qualified())
        for criterion in MISSING_PATTERNS[pattern % len(MISSING_PATTERNS)]:
            style = self.rng.choice(MISSING_STYLES[criterion])
            if style == "PAST":
                style = (self.today - timedelta(days=self.rng.randrange(5, 120))).isoformat()
            values[("budget", "authority", "need", "timing").index(criterion)] = style
        return values[0], values[1], values[2], values[3]

    def open_deal(self, name: str, kind: str, stage: int, owner: int, bant: Bant) -> SeedDeal:
        rng = self.rng
        created = self.now - timedelta(milliseconds=rng.randrange(20 * _DAY_MS, 200 * _DAY_MS))
        span = max(1, (self.now - created) // timedelta(milliseconds=1) - 3_600_000)
        modified = created + timedelta(milliseconds=rng.randrange(span))
        close = self.today + timedelta(days=rng.randrange(10, 150))
        return SeedDeal(name, owner, stage, kind, self._amount(kind), close, created, modified, *bant)

    def closed_deal(self, name: str, kind: str, won: bool, owner: int, bant: Bant) -> SeedDeal:
        rng = self.rng
        close = self.today - timedelta(days=rng.randrange(15, 400))
        created = datetime.combine(close, datetime.min.time(), self.now.tzinfo) - timedelta(
            days=rng.randrange(30, 120)
        )
        modified = datetime.combine(close, datetime.min.time(), self.now.tzinfo) + timedelta(
            milliseconds=rng.randrange(8 * 3_600_000, 20 * 3_600_000)
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

    def _amount(self, kind: str) -> int:
        low, high = (15, 60) if kind == "POC" else (20, 400)
        return self.rng.randrange(low, high) * 1000


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
        bant = writer.qualified() if qualified else writer.missing(rng.randrange(len(MISSING_PATTERNS)))
        name = f"{COMPANIES[i % companies]} — {PRODUCTS[(i // companies) % products]} #{i + 1}"
        suffix = " POC" if kind == "POC" else ""
        deals.append(
            writer.open_deal(name + suffix, kind, rng.randrange(OPEN_STAGE_COUNT), rng.randrange(6), bant)
        )
    return Story(deals=tuple(deals))
