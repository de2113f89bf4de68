"""Snooze in the rules: when a snooze holds, why one is ignored, and the framework's `[snooze]` table."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules import Deal, FrameworkError, SnoozeRules, SnoozeState, Status, evaluate, framework_from_mapping
from rules.snooze import POC_REFUSAL, judge_snooze

TODAY = date(2026, 11, 27)
REASON = "Budget cycle opens in January"
MINIMAL = {"name": "BANT", "criteria": [{"name": "budget", "field": "budget", "checks": ["present"]}]}
FRAMEWORK = framework_from_mapping(MINIMAL, "test")


def deal(**fields: object) -> Deal:
    values: dict[str, object] = {"id": "D1", "budget": None, **fields}
    return Deal(**values)  # type: ignore[arg-type]


def test_a_valid_snooze_makes_an_unqualified_deal_snoozed_and_keeps_what_it_misses() -> None:
    """Status snoozed; missing, reasons, score and the qualify-out clock stay as they were."""
    flagged = date(2026, 11, 20)
    plain = evaluate(deal(flagged_since=flagged), FRAMEWORK, TODAY)
    snoozed = evaluate(
        deal(
            flagged_since=flagged,
            snooze_until=TODAY + timedelta(days=10),
            snooze_reason=REASON,
            modified_by="u7",
        ),
        FRAMEWORK,
        TODAY,
    )
    assert plain.status is Status.NEEDS_QUALIFICATION and plain.snooze is None
    assert snoozed.status is Status.SNOOZED
    assert (snoozed.missing, snoozed.reasons, snoozed.score) == (plain.missing, plain.reasons, plain.score)
    assert snoozed.flagged_since == flagged
    assert snoozed.snooze is not None and snoozed.snooze.by == "u7"
    assert snoozed.snooze.note == f"Snoozed until {(TODAY + timedelta(days=10)).isoformat()}: {REASON}"
    assert not Status.SNOOZED.is_unqualified and Status.SNOOZED.is_flagged


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"snooze_until": TODAY + timedelta(days=5), "snooze_reason": "later"}, "at least 10 characters"),
        ({"snooze_until": TODAY + timedelta(days=5), "snooze_reason": None}, "at least 10 characters"),
        ({"snooze_reason": REASON}, "no snooze-until date"),
        ({"snooze_until": TODAY + timedelta(days=31), "snooze_reason": REASON}, "on or before 2026-12-27"),
        (
            {"snooze_until": TODAY + timedelta(days=5), "snooze_reason": REASON, "deal_type": "POC"},
            POC_REFUSAL,
        ),
    ],
    ids=["short-reason", "no-reason", "no-date", "past-the-limit", "poc"],
)
def test_a_snooze_that_breaks_a_rule_is_ignored_with_the_reason(fields: dict[str, object], why: str) -> None:
    framework = framework_from_mapping({**MINIMAL, "poc": {"deal_types": ["POC"]}}, "test")
    assessment = evaluate(deal(**fields), framework, TODAY)
    assert assessment.status in (Status.NEEDS_QUALIFICATION, Status.POC_UNQUALIFIED)
    assert assessment.snooze is not None and assessment.snooze.state is SnoozeState.IGNORED
    assert why in assessment.snooze.why and assessment.snooze.note.startswith("Snooze ignored: ")


def test_the_limit_counts_from_the_day_the_snooze_was_first_seen() -> None:
    """A date 40 days after it was first seen stays ignored however long one waits; 30 days holds."""
    first_seen = TODAY - timedelta(days=20)
    late = deal(snooze_until=TODAY + timedelta(days=20), snooze_reason=REASON, snoozed_on=first_seen)
    assert evaluate(late, FRAMEWORK, TODAY).status is Status.NEEDS_QUALIFICATION
    in_time = deal(snooze_until=TODAY + timedelta(days=10), snooze_reason=REASON, snoozed_on=first_seen)
    assert evaluate(in_time, FRAMEWORK, TODAY).status is Status.SNOOZED


def test_a_snooze_whose_date_passed_has_ended_and_the_deal_is_flagged() -> None:
    ended = evaluate(deal(snooze_until=TODAY - timedelta(days=1), snooze_reason=REASON), FRAMEWORK, TODAY)
    assert ended.status is Status.NEEDS_QUALIFICATION
    assert ended.snooze is not None and ended.snooze.state is SnoozeState.ENDED
    assert ended.snooze.note == "Snooze ended on 2026-11-26" and ended.snooze.by is None
    last_day = evaluate(deal(snooze_until=TODAY, snooze_reason=REASON), FRAMEWORK, TODAY)
    assert last_day.status is Status.SNOOZED, "a snooze holds through its last day"


def test_a_qualified_deal_ignores_its_snooze_fields() -> None:
    qualified = evaluate(deal(budget="85000", snooze_until=TODAY, snooze_reason=REASON), FRAMEWORK, TODAY)
    assert qualified.status is Status.QUALIFIED and qualified.snooze is None


def test_the_snooze_table_is_read_and_checked() -> None:
    """`[snooze]` sets each rule; a wrong value or unknown key is reported with its key."""
    framework = framework_from_mapping(
        {**MINIMAL, "snooze": {"max_days": 14, "allow_poc": True, "min_reason_length": 0, "enabled": True}},
        "test",
    )
    assert framework.snooze == SnoozeRules(enabled=True, max_days=14, allow_poc=True, min_reason_length=0)
    assert framework_from_mapping(MINIMAL, "test").snooze == SnoozeRules()
    with pytest.raises(FrameworkError) as caught:
        framework_from_mapping(
            {**MINIMAL, "snooze": {"max_days": 0, "allow_poc": "no", "max_day": 3}}, "test"
        )
    problems = "\n".join(caught.value.problems)
    assert "snooze.max_days: must be a whole number, at least 1" in problems
    assert "snooze.allow_poc: must be true or false" in problems
    assert "snooze.max_day: unknown key" in problems


def test_snoozing_turned_off_ignores_every_snooze() -> None:
    framework = framework_from_mapping({**MINIMAL, "snooze": {"enabled": False}}, "test")
    result = judge_snooze(
        deal(snooze_until=TODAY + timedelta(days=3), snooze_reason=REASON), framework.snooze, False, TODAY
    )
    assert result is not None and result.state is SnoozeState.IGNORED and "turned off" in result.why
