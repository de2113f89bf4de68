"""Cohort win rates and their comparison (issue 13): the seed's story in numbers."""

from __future__ import annotations

import pytest

from worker.report.cohorts import compare, win_rate


def test_the_seed_story_qualified_pocs_win_far_more_and_it_is_no_accident() -> None:
    """20 qualified POCs, 16 won; 65 unqualified, 3 won: 80% against under 5%, intervals that do not
    overlap, and a difference Fisher's exact test puts far below any reasonable doubt."""
    qualified = win_rate("qualified at entry", 16, 4)
    unqualified = win_rate("unqualified at entry", 3, 62)
    assert qualified.rate == pytest.approx(0.80) and qualified.closed == 20
    assert (qualified.low, qualified.high) == pytest.approx((0.5840, 0.9193), abs=1e-4)
    assert unqualified.rate == pytest.approx(3 / 65)
    assert (unqualified.low, unqualified.high) == pytest.approx((0.0158, 0.1271), abs=1e-4)
    assert unqualified.high is not None and qualified.low is not None and unqualified.high < qualified.low
    result = compare(qualified, unqualified)
    assert result.difference == pytest.approx(0.80 - 3 / 65)
    assert result.p_value is not None and result.p_value < 1e-9


def test_a_small_cohort_has_a_wide_interval_and_no_significant_difference() -> None:
    """2 of 3 against 1 of 3: the rates differ, the evidence does not."""
    result = compare(win_rate("a", 2, 1), win_rate("b", 1, 2))
    assert result.first.low is not None and result.first.low < 0.25
    assert result.p_value == pytest.approx(1.0)


def test_an_empty_cohort_has_no_rate_and_is_not_compared() -> None:
    empty = win_rate("no closed deals yet", 0, 0)
    assert (empty.rate, empty.low, empty.high) == (None, None, None)
    assert compare(empty, win_rate("b", 1, 1)).p_value is None


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="must be 0 or more"):
        win_rate("x", -1, 3)
