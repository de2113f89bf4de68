"""Task wording and business-day due dates shared by every connector."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.tasks import (
    SUBJECT_MAX,
    add_business_days,
    due_date,
    prompt_for,
    sync_key,
    task_description,
    task_subject,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("needs_qualification", "[bant-sync] Acme renewal: confirm Budget, Timing"),
        ("poc_unqualified", "[bant-sync] Acme renewal: POC without BANT — confirm Budget, Timing"),
        ("qualify_out", "[bant-sync] Acme renewal: qualify or close out — confirm Budget, Timing"),
    ],
    ids=["ordinary", "poc", "qualify-out"],
)
def test_subject_names_deal_and_missing_criteria(status: str, expected: str) -> None:
    """The subject says which deal and which criteria, and flags POCs and qualify-out deals."""
    assert task_subject("Acme renewal", ("budget", "timing"), status) == expected


def test_subject_is_cut_to_the_salesforce_limit() -> None:
    """A very long deal name never produces a subject over 255 characters."""
    subject = task_subject("x" * 400, ("budget",))
    assert len(subject) == SUBJECT_MAX
    assert subject.endswith("…")


def test_description_asks_one_question_per_missing_criterion_with_reason() -> None:
    """Each missing criterion gets its question and, when the rules said why, the current problem."""
    text = task_description(
        "Acme", ("budget", "need"), reasons=("Budget: 'TBD' is a placeholder",), status="poc_unqualified"
    )
    lines = text.splitlines()
    assert lines[1] == f"- {prompt_for('budget')}"
    assert lines[2] == "  Now: Budget: 'TBD' is a placeholder"
    assert lines[3] == f"- {prompt_for('need')}"
    assert "POC" in text
    assert task_description("Acme", ("budget", "need"), ("Budget: 'TBD' is a placeholder",)) != text


def test_unknown_criterion_gets_a_generic_prompt() -> None:
    """A custom framework's criterion is still named in a readable question."""
    assert prompt_for("security_review").startswith("Security review — confirm")


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2026, 3, 2), 3, date(2026, 3, 5)),  # Mon + 3 -> Thu
        (date(2026, 3, 5), 3, date(2026, 3, 10)),  # Thu + 3 -> Tue
        (date(2026, 3, 7), 1, date(2026, 3, 10)),  # Sat -> Mon, +1 -> Tue
        (date(2026, 3, 8), 0, date(2026, 3, 9)),  # Sun + 0 -> Mon
        (date(2026, 3, 6), 5, date(2026, 3, 13)),  # Fri + 5 -> next Fri
    ],
    ids=["mon", "thu-over-weekend", "sat", "sun-zero", "week"],
)
def test_business_days_skip_weekends(start: date, days: int, expected: date) -> None:
    """Due dates count Monday–Friday only."""
    assert add_business_days(start, days) == expected


def test_business_days_skip_holidays() -> None:
    """A listed holiday is not a working day."""
    assert due_date(date(2026, 3, 2), 1, holidays={date(2026, 3, 3)}) == date(2026, 3, 4)


def test_negative_days_refused() -> None:
    """A negative offset is a configuration mistake."""
    with pytest.raises(ValueError):
        add_business_days(date(2026, 3, 2), -1)


def test_sync_key_is_deterministic_and_distinct_per_connection() -> None:
    """Same connection and deal → same key; another connection or deal → another key; short enough."""
    key = sync_key("sf-prod", "006000000000001AAA")
    assert key == sync_key("sf-prod", "006000000000001AAA")
    assert key != sync_key("sf-test", "006000000000001AAA")
    assert key != sync_key("sf-prod", "006000000000002AAA")
    assert len(key) <= 64
