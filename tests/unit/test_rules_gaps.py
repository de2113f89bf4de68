"""Assessment.gaps: what a follow-up task needs per missing criterion (label, hint, field, reason)."""

from __future__ import annotations

from datetime import date

import pytest

from rules import Assessment, Deal, Framework, Gap, Status, evaluate
from rules.model import new_assessment, new_gap

TODAY = date(2026, 11, 27)


def test_one_gap_per_missing_criterion_in_framework_order(bant: Framework) -> None:
    """Gaps follow `missing` and `reasons` one to one, with the framework's label, hint and field."""
    result = evaluate(
        Deal(id="D", budget="TBD", authority="Dana (CFO)", need=None, timing="Q1 2024"), bant, TODAY
    )
    assert result.missing == ("budget", "need", "timing")
    assert tuple(gap.criterion for gap in result.gaps) == result.missing
    assert tuple(gap.reason for gap in result.gaps) == result.reasons
    budget = bant.criterion("budget")
    assert result.gaps[0] == Gap("budget", "Budget", budget.hint, "budget", "Budget: 'TBD' is a placeholder")
    assert result.gaps[1].reason == "Need: missing"
    assert result.gaps[2].reason == "Timing: 'Q1 2024' has passed"


def test_custom_framework_gaps_name_its_labels_and_fields(meddic: Framework) -> None:
    """MEDDIC's gaps carry its own labels and hints, and the field each criterion reads (custom or not)."""
    result = evaluate(
        Deal(id="M", stage="Negotiation/Review", need="Month-end close takes 12 days"), meddic, TODAY
    )
    by_name = {gap.criterion: gap for gap in result.gaps}
    assert by_name["economic_buyer"].label == "Economic buyer"
    assert by_name["economic_buyer"].field == "authority"
    assert by_name["metrics"].field == "metrics"
    assert by_name["metrics"].hint == meddic.criterion("metrics").hint
    assert "identify_pain" not in by_name


def test_only_required_criteria_become_gaps(meddic: Framework) -> None:
    """At an early stage, a criterion not yet required is not a gap (it still lowers the score)."""
    result = evaluate(Deal(id="M", stage="Qualification", need="short"), meddic, TODAY)
    assert result.missing == ("identify_pain",)
    assert [gap.criterion for gap in result.gaps] == ["identify_pain"]


@pytest.mark.parametrize(
    ("deal", "status"),
    [
        (
            Deal(
                id="Q",
                budget="85000",
                authority="CFO",
                need="Replace three nightly ETL jobs",
                timing="2027-01-01",
            ),
            Status.QUALIFIED,
        ),
        (Deal(id="R", stage="Prospecting"), Status.NOT_EVALUATED),
    ],
    ids=["qualified", "not-evaluated"],
)
def test_no_gaps_when_nothing_is_missing(
    bant: Framework, meddic: Framework, deal: Deal, status: Status
) -> None:
    """Qualified and not-evaluated deals have no gaps."""
    result = evaluate(deal, bant if status is Status.QUALIFIED else meddic, TODAY)
    assert result.status is status
    assert result.gaps == ()


def test_gaps_default_to_empty_for_existing_constructors() -> None:
    """Code that builds an Assessment positionally, without gaps, still works."""
    assessment = Assessment("D", Status.QUALIFIED, (), 100, (), False, None)
    assert assessment.gaps == ()


@pytest.mark.parametrize("name", ["bant", "meddic"])
def test_every_shipped_criterion_has_a_label_and_a_question_for_the_buyer(
    name: str, bant: Framework, meddic: Framework
) -> None:
    """Each shipped criterion has a label and a hint phrased as a question to put to the buyer."""
    framework = {"bant": bant, "meddic": meddic}[name]
    for criterion in framework.criteria:
        assert criterion.label and criterion.label != criterion.name, criterion.name
        assert criterion.hint.endswith("?") and len(criterion.hint) >= 30, criterion.name


def test_fast_constructors_build_the_same_objects() -> None:
    """new_gap / new_assessment give objects equal (and hashing equal) to the dataclass constructors."""
    gap = Gap("budget", "Budget", "How much?", "budget", "Budget: missing")
    fast_gap = new_gap("budget", "Budget", "How much?", "budget", "Budget: missing")
    assert fast_gap == gap and hash(fast_gap) == hash(gap) and repr(fast_gap) == repr(gap)
    args = ("D", Status.NEEDS_QUALIFICATION, ("budget",), 75, ("Budget: missing",), True, TODAY, (gap,))
    assert new_assessment(*args) == Assessment(*args)
    assert new_assessment(*args[:7]) == Assessment(*args[:7])
    with pytest.raises(AttributeError):
        fast_gap.reason = "changed"  # type: ignore[misc]
