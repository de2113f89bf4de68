"""evaluate(): statuses, precedence, stage gating, POC matching, scope, score and reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules import Deal, Framework, Status, build_framework, evaluate, framework_from_mapping, parse_check
from rules.framework import Criterion, PocMatcher, Scope

TODAY = date(2026, 11, 27)
GOOD = {
    "budget": "85000",
    "authority": "Dana Whitfield (CFO)",
    "need": "Replace three nightly ETL jobs that miss SLAs",
    "timing": "2027-01-15",
}


def deal(**fields: object) -> Deal:
    values = {**GOOD, **fields}
    return Deal(id=str(values.pop("id", "D1")), **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "status", "missing"),
    [
        ({}, Status.QUALIFIED, ()),
        ({"budget": "TBD"}, Status.NEEDS_QUALIFICATION, ("budget",)),
        ({"deal_type": "POC", "budget": "TBD"}, Status.POC_UNQUALIFIED, ("budget",)),
        (
            {"deal_type": "poc", "need": None, "timing": "2020-01-01"},
            Status.POC_UNQUALIFIED,
            ("need", "timing"),
        ),
        ({"deal_type": "POC"}, Status.QUALIFIED, ()),
        ({"authority": " ", "need": "short"}, Status.NEEDS_QUALIFICATION, ("authority", "need")),
        (
            {"budget": None, "authority": None, "need": None, "timing": None},
            Status.NEEDS_QUALIFICATION,
            ("budget", "authority", "need", "timing"),
        ),
        ({"budget": "TBD", "flagged_since": TODAY - timedelta(days=31)}, Status.QUALIFY_OUT, ("budget",)),
        (
            {"budget": "TBD", "flagged_since": TODAY - timedelta(days=30)},
            Status.NEEDS_QUALIFICATION,
            ("budget",),
        ),
        (
            {"deal_type": "POC", "budget": "TBD", "flagged_since": TODAY - timedelta(days=90)},
            Status.QUALIFY_OUT,
            ("budget",),
        ),
        ({"flagged_since": TODAY - timedelta(days=90)}, Status.QUALIFIED, ()),
    ],
    ids=[
        "all-met",
        "placeholder-budget",
        "poc-missing",
        "poc-two-missing-in-framework-order",
        "poc-qualified",
        "blank-and-short",
        "all-null",
        "qualify-out-after-31-days",
        "not-yet-qualify-out-at-30-days",
        "qualify-out-beats-poc",
        "qualified-ignores-old-flag",
    ],
)
def test_bant_statuses(
    bant: Framework, fields: dict[str, object], status: Status, missing: tuple[str, ...]
) -> None:
    """The BANT framework gives each deal the documented status and missing list."""
    result = evaluate(deal(**fields), bant, TODAY)
    assert result.status is status
    assert result.missing == missing
    assert len(result.reasons) == len(missing)


def test_reasons_name_the_label_and_the_problem(bant: Framework) -> None:
    """Each reason is one sentence: the criterion label, then what is wrong."""
    result = evaluate(deal(budget="TBD", need="help", timing="2026-01-01"), bant, TODAY)
    assert result.reasons == (
        "Budget: 'TBD' is a placeholder",
        "Need: 'help' is too short (4 of at least 15 characters)",
        "Timing: the date 2026-01-01 has passed",
    )


@pytest.mark.parametrize(
    ("fields", "score"),
    [
        ({}, 100),
        ({"budget": None}, 75),
        ({"budget": None, "need": "x"}, 50),
        ({"budget": None, "need": None, "authority": None, "timing": None}, 0),
    ],
)
def test_score_is_the_share_of_criteria_met(bant: Framework, fields: dict[str, object], score: int) -> None:
    """Score is the percentage of the framework's criteria met, as an integer."""
    assert evaluate(deal(**fields), bant, TODAY).score == score


def test_flagged_since_is_kept_or_started_today(bant: Framework) -> None:
    """An unqualified deal keeps its first-flagged date; a newly unqualified one starts today."""
    assert evaluate(deal(budget=None), bant, TODAY).flagged_since == TODAY
    earlier = TODAY - timedelta(days=5)
    assert evaluate(deal(budget=None, flagged_since=earlier), bant, TODAY).flagged_since == earlier
    assert evaluate(deal(flagged_since=earlier), bant, TODAY).flagged_since is None


def test_future_flagged_since_is_not_trusted(bant: Framework) -> None:
    """A flagged-since date in the future (clock skew, bad import) counts from today."""
    result = evaluate(deal(budget=None, flagged_since=TODAY + timedelta(days=3)), bant, TODAY)
    assert result.flagged_since == TODAY


def _staged() -> Framework:
    checks = (parse_check("present"),)
    return build_framework(
        "staged",
        (
            Criterion("need", "Need", "need", checks),
            Criterion("budget", "Budget", "budget", checks, required_from_stage="Proposal"),
            Criterion("champion", "Champion", "champion", checks, required_from_stage="Discovery", weight=3),
        ),
        stage_order=("Lead", "Discovery", "Proposal", "Negotiation"),
        poc=PocMatcher(deal_types=frozenset({"poc"}), stages=frozenset({"pilot"})),
        scope=Scope(pipelines=frozenset({"sales"}), exclude_stages=frozenset({"nurture"})),
    )


@pytest.mark.parametrize(
    ("stage", "deal_type", "pipeline", "status", "missing"),
    [
        ("Lead", None, "sales", Status.NEEDS_QUALIFICATION, ("need",)),
        ("Discovery", None, "sales", Status.NEEDS_QUALIFICATION, ("need", "champion")),
        ("proposal", None, "sales", Status.NEEDS_QUALIFICATION, ("need", "budget", "champion")),
        ("Somewhere Else", None, "sales", Status.NEEDS_QUALIFICATION, ("need", "budget", "champion")),
        ("Lead", "POC", "sales", Status.POC_UNQUALIFIED, ("need", "budget", "champion")),
        ("Pilot", None, "sales", Status.POC_UNQUALIFIED, ("need", "budget", "champion")),
        ("Lead", None, "partners", Status.NOT_EVALUATED, ()),
        ("Nurture", None, "sales", Status.NOT_EVALUATED, ()),
    ],
    ids=[
        "lead",
        "discovery",
        "case-insensitive-stage",
        "unknown-stage-strict",
        "poc-all",
        "poc-by-stage",
        "out-of-pipeline",
        "excluded-stage",
    ],
)
def test_stage_gating_poc_and_scope(
    stage: str, deal_type: str | None, pipeline: str, status: Status, missing: tuple[str, ...]
) -> None:
    """Criteria apply from their stage on; POCs need all; out-of-scope deals are not evaluated."""
    result = evaluate(Deal(id="S", stage=stage, deal_type=deal_type, pipeline=pipeline), _staged(), TODAY)
    assert (result.status, result.missing) == (status, missing)


def test_weights_shape_the_score() -> None:
    """Optional weights: a weight-3 criterion counts three times."""
    result = evaluate(
        Deal(id="W", stage="Lead", pipeline="sales", extra={"champion": "Ana"}), _staged(), TODAY
    )
    assert result.score == 60


def test_no_criterion_required_yet_is_not_evaluated(meddic: Framework) -> None:
    """At a stage before any criterion applies, the deal is not evaluated."""
    assert evaluate(Deal(id="M", stage="Prospecting"), meddic, TODAY).status is Status.NOT_EVALUATED


def test_poc_name_pattern(meddic: Framework) -> None:
    """MEDDIC marks a deal a POC by its name, and then requires every criterion."""
    result = evaluate(Deal(id="M", name="Initech proof of concept", stage="Prospecting"), meddic, TODAY)
    assert result.status is Status.POC_UNQUALIFIED
    assert result.missing == tuple(c.name for c in meddic.criteria)


def test_custom_fields_come_from_extra(meddic: Framework) -> None:
    """A custom framework reads fields a connection maps into Deal.extra."""
    full = Deal(
        id="M",
        stage="Negotiation/Review",
        need="Month-end close takes 12 days",
        authority="CFO",
        extra={
            "metrics": "close in 5 days",
            "champion": "Controller",
            "decision_criteria": "SOC2, SSO, NetSuite sync",
            "decision_process": "yes",
        },
    )
    assert evaluate(full, meddic, TODAY).status is Status.QUALIFIED


def test_unicode_and_very_long_text(bant: Framework) -> None:
    """Unicode and megabyte-long values are judged like any text."""
    result = evaluate(
        deal(need="需要替换三个夜间ETL作业" * 2, authority="Zoë Ångström" * 10_000), bant, TODAY
    )
    assert result.status is Status.QUALIFIED


def test_invalid_framework_lists_every_problem() -> None:
    """A bad framework file names each problem with its key, all at once."""
    with pytest.raises(ValueError) as info:
        framework_from_mapping(
            {
                "nme": "x",
                "stage_order": ["A"],
                "poc": {"name_pattern": "("},
                "criteria": [
                    {"name": "budget", "field": "budget", "checks": ["min_lenght:3"]},
                    {"name": "need", "field": "need", "checks": ["present"], "required_from_stage": "Z"},
                    {"name": "need", "field": "need", "checks": ["present"], "weight": 0},
                ],
            },
            "custom.toml",
        )
    text = str(info.value)
    for expected in [
        "custom.toml",
        "nme: unknown key (did you mean 'name'?)",
        "name: required",
        "poc.name_pattern: not a valid regular expression",
        "criteria[0].checks[0]: unknown check 'min_lenght' (did you mean 'min_length'?)",
        "criteria[1].required_from_stage: 'Z' is not in stage_order",
        "criteria[2].weight: must be a number above 0",
    ]:
        assert expected in text


def test_a_framework_built_directly_judges_like_a_built_one(today: date) -> None:
    """A Framework constructed directly (not through build_framework) compiles its criteria: 'TBD' is a
    placeholder and a blank Need is missing, exactly as with build_framework (it used to judge all met)."""
    criteria = (
        Criterion("budget", "Budget", "budget", (parse_check("present"),)),
        Criterion("need", "Need", "need", (parse_check("min_length:15"),), required_from_stage="Demo"),
    )
    direct = Framework("direct", criteria, stage_order=("Discovery", "Demo"))
    built = build_framework("direct", criteria, stage_order=("Discovery", "Demo"))
    deal = Deal("d1", stage="Demo", budget="TBD", need=None)
    assessed = evaluate(deal, direct, today)
    assert assessed.status is Status.NEEDS_QUALIFICATION
    assert assessed.missing == ("budget", "need")
    assert assessed == evaluate(deal, built, today)
    assert [c.name for c in direct.required_at("Discovery")] == ["budget"]
