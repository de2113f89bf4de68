"""Properties of evaluate() that hold for any deal (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Deal, Framework, Status, evaluate
from tests.conftest import TODAY, shipped_framework

BANT = shipped_framework("bant")
SATISFYING = {
    "budget": "85000",
    "authority": "Dana Whitfield (CFO)",
    "need": "Replace three nightly ETL jobs",
    "timing": "2027-06-30",
}
values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["TBD", "n/a", "?", "0", "-", "help", "2026-01-01", "2027-01-01", "$50,000", "Q3"]),
    st.integers(min_value=-10, max_value=10**9),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)),
)
deals = st.builds(
    Deal,
    id=st.text(min_size=1, max_size=8),
    stage=st.one_of(st.none(), st.sampled_from(list(BANT.stage_order)), st.text(max_size=10)),
    deal_type=st.one_of(st.none(), st.sampled_from(["POC", "poc", "New Business", "Existing Business"])),
    budget=values,
    authority=values,
    need=values,
    timing=values,
    flagged_since=st.one_of(st.none(), st.dates(min_value=TODAY - timedelta(days=400), max_value=TODAY)),
)


@settings(max_examples=300, deadline=None)
@given(deals)
def test_deterministic_and_bounded(deal: Deal) -> None:
    """The same input gives the same assessment; the score stays within 0-100."""
    first = evaluate(deal, BANT, TODAY)
    assert first == evaluate(deal, BANT, TODAY)
    assert 0 <= first.score <= 100


@settings(max_examples=300, deadline=None)
@given(deals, st.sampled_from(sorted(SATISFYING)))
def test_satisfying_a_criterion_never_lowers_the_score(deal: Deal, field: str) -> None:
    """Filling in one criterion with a good value never lowers the score or adds a missing criterion."""
    before = evaluate(deal, BANT, TODAY)
    after = evaluate(Deal(**{**_fields(deal), field: SATISFYING[field]}), BANT, TODAY)
    assert after.score >= before.score
    assert set(after.missing) <= set(before.missing)


@settings(max_examples=300, deadline=None)
@given(deals)
def test_qualified_means_nothing_missing(deal: Deal) -> None:
    """A qualified (or not-evaluated) deal has no missing criteria and no reasons; others have some."""
    result = evaluate(deal, BANT, TODAY)
    if result.status in (Status.QUALIFIED, Status.NOT_EVALUATED):
        assert result.missing == () and result.reasons == ()
    else:
        assert result.missing and len(result.reasons) == len(result.missing)


def _fields(deal: Deal) -> dict[str, object]:
    return {name: getattr(deal, name) for name in Deal.__dataclass_fields__}


def test_framework_fixture_is_bant(bant: Framework) -> None:
    """The module-level framework is the shipped BANT file."""
    assert BANT.name == bant.name == "BANT"
