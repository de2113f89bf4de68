"""Win rates of deal cohorts, and how sure one can be that two cohorts differ. Pure: counts in, values out.

The product's claim is a difference between two cohorts: POCs qualified before they started closed at 80%
(16 of 20), unqualified ones at under 5% (3 of 65). Small cohorts make raw percentages misleading, so each
rate carries a 95% Wilson score interval (well behaved near 0 and 1 and for a few dozen deals, where the
normal approximation is not), and two cohorts are compared with Fisher's exact test (exact for 2x2 tables
of any size, no large-sample assumption). Both come from SciPy (`scipy.stats.binomtest(...).proportion_ci`
and `scipy.stats.fisher_exact`): a maintained statistics library rather than formulas written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, fisher_exact

CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class WinRate:
    """A cohort's closed deals: how many were won and lost, the win rate and its 95% interval (None for an
    empty cohort, which has no rate)."""

    cohort: str
    won: int
    lost: int
    rate: float | None
    low: float | None
    high: float | None

    @property
    def closed(self) -> int:
        return self.won + self.lost


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two cohorts side by side: the difference of their win rates (first minus second), and the two-sided
    p-value of Fisher's exact test that they share one rate (None when either cohort is empty)."""

    first: WinRate
    second: WinRate
    difference: float | None
    p_value: float | None


def win_rate(cohort: str, won: int, lost: int) -> WinRate:
    """The win rate of a cohort with `won` and `lost` closed deals, with its 95% Wilson interval."""
    if won < 0 or lost < 0:
        raise ValueError(f"cohort {cohort!r}: won and lost must be 0 or more, not {won} and {lost}")
    closed = won + lost
    if closed == 0:
        return WinRate(cohort, 0, 0, None, None, None)
    interval = binomtest(won, closed).proportion_ci(CONFIDENCE, method="wilson")
    return WinRate(cohort, won, lost, won / closed, float(interval.low), float(interval.high))


def compare(first: WinRate, second: WinRate) -> Comparison:
    """`first` against `second`: the difference of their rates and Fisher's exact two-sided p-value."""
    if first.rate is None or second.rate is None:
        return Comparison(first, second, None, None)
    table = np.array([[first.won, first.lost], [second.won, second.lost]])
    result = fisher_exact(table, alternative="two-sided")
    return Comparison(first, second, first.rate - second.rate, float(result.pvalue))
