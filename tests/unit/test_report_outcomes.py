"""Judging closed deals at their entry point, and the cohorts that follow (pure code over values)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.model import ClosedDeal
from rules import Deal, Framework
from worker.config.frameworks import load_framework
from worker.report.model import Source
from worker.report.outcomes import QUALIFIED, UNQUALIFIED, cohorts, judge, judge_all, source_label

ENTRY = datetime(2026, 3, 2, 9, tzinfo=UTC)
GOOD = {
    "budget": "$40k approved in FY27 IT budget",
    "authority": "Dana Fox (CFO)",
    "need": "Replace spreadsheets for 40 reps",
    "timing": "2026-05-30",
}


@pytest.fixture(scope="module")
def bant() -> Framework:
    return load_framework("bant")


def _closed(
    deal_id: str,
    won: bool,
    *,
    poc: bool = True,
    missing: tuple[str, ...] = (),
    fallback: tuple[str, ...] = (),
    entered: datetime | None = ENTRY,
) -> ClosedDeal:
    values: dict[str, str | None] = dict(GOOD)
    for name in missing:
        values[name] = None
    deal = Deal(
        id=deal_id,
        name=f"Deal {deal_id}",
        owner_id="005A",
        stage="Prospecting",
        deal_type="POC" if poc else "New Business",
        **values,
    )
    return ClosedDeal(deal, won, date(2026, 6, 1), entered, fallback)


def test_a_deal_is_judged_by_its_values_at_entry_on_its_entry_day(bant: Framework) -> None:
    """Timing 2026-05-30 lies ahead on the entry day, so it is met then (though past by the close)."""
    judged = judge(_closed("1", won=True), bant)
    assert (judged.is_poc, judged.qualified, judged.won, judged.source) == (True, True, True, Source.HISTORY)
    assert judge(_closed("2", won=False, missing=("budget",)), bant).qualified is False


def test_a_deal_that_never_entered_is_in_no_cohort(bant: Framework) -> None:
    judged = judge(_closed("1", won=True, entered=None), bant)
    assert judged.qualified is None and judged.is_poc
    sections = cohorts([judged])
    assert sections[0].comparison.first.closed == 0 and sections[0].comparison.second.closed == 0


def test_without_history_the_audit_logs_verdict_wins_over_the_values_at_close(bant: Framework) -> None:
    """Budget was filled in later (the values at close look qualified), but bant-sync had flagged the POC at
    its entry: the audit log's verdict stands and the source says so."""
    closed = _closed("1", won=False, fallback=("budget",))
    assert judge(closed, bant, "poc_unqualified").qualified is False
    assert judge(closed, bant, "poc_unqualified").source == Source.AUDIT
    at_close = judge(closed, bant, None)
    assert (at_close.qualified, at_close.source) == (True, Source.AT_CLOSE)
    assert judge(closed, bant, "not-a-status").source == Source.AT_CLOSE


def test_history_wins_over_the_audit_log(bant: Framework) -> None:
    assert judge(_closed("1", won=False), bant, "poc_unqualified").qualified is True


def test_the_seed_story_gives_80_percent_against_5(bant: Framework) -> None:
    deals = [_closed(f"q{i}", won=i < 16) for i in range(20)]
    deals += [_closed(f"u{i}", won=i < 3, missing=("budget", "authority")) for i in range(65)]
    deals += [_closed(f"n{i}", won=i < 5, poc=False) for i in range(10)]
    pocs, every = cohorts(judge_all(deals, bant))
    first, second = pocs.comparison.first, pocs.comparison.second
    assert (first.cohort, first.won, first.closed) == (QUALIFIED, 16, 20)
    assert (second.cohort, second.won, second.closed) == (UNQUALIFIED, 3, 65)
    assert pocs.comparison.p_value is not None and pocs.comparison.p_value < 1e-9
    assert (every.comparison.first.closed, every.comparison.first.won) == (30, 21)
    assert pocs.source == Source.HISTORY.value


def test_all_deals_are_compared_only_when_some_were_not_pocs(bant: Framework) -> None:
    only_pocs = [_closed(f"q{i}", won=i < 2) for i in range(4)]
    assert [s.key for s in cohorts(judge_all(only_pocs, bant))] == ["pocs"]
    mixed = [*only_pocs, _closed("n", won=True, poc=False)]
    assert [s.key for s in cohorts(judge_all(mixed, bant))] == ["pocs", "all_deals"]


def test_a_mixed_cohort_says_how_many_came_from_each_source(bant: Framework) -> None:
    deals = [_closed("a", True), _closed("b", False, fallback=("need",)), _closed("c", False)]
    label = source_label(judge_all(deals, bant))
    assert label == "field history for 2 of 3, values at close for 1 of 3"
