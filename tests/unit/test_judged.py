"""The judgement key: what makes bant-sync judge a deal again, and what does not."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from rules import Deal, DealFlags, Framework, evaluate
from worker.state.ledger import LedgerEntry, LedgerState
from worker.sync.judged import framework_key, judgement_key, task_as_left

TODAY = date(2026, 12, 1)
DEAL = Deal(
    "006A",
    name="Acme POC",
    owner_id="005R",
    stage="Prospecting",
    deal_type="POC",
    amount=50000.0,
    close_date=date(2027, 1, 15),
    budget="50k approved",
    authority=None,
    need="replace the legacy tool",
    timing=None,
    extra={"Region__c": "EMEA"},
)


def test_bant_sync_s_own_write_leaves_the_key_alone(bant: Framework) -> None:
    """What bant-sync's own write changes (the stamp, the last modifier, its output fields) is not in it."""
    fw = framework_key(bant)
    written = replace(
        DEAL,
        modified_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
        modified_by="005INTEGRATION",
        flags=DealFlags(status="poc_unqualified", missing=("authority", "timing"), score=50),
    )
    assert judgement_key(written, TODAY, fw) == judgement_key(DEAL, TODAY, fw)


@pytest.mark.parametrize(
    "change",
    [
        {"budget": "TBC"},
        {"authority": "CFO signs"},
        {"stage": "Negotiation"},
        {"owner_id": "005S"},
        {"name": "Acme POC (renewal)"},
        {"close_date": date(2026, 12, 24)},
        {"amount": 50001.0},
        {"snooze_until": date(2026, 12, 10)},
        {"snooze_reason": "waiting on legal review"},
        {"flagged_since": date(2026, 11, 1)},
        {"extra": {"Region__c": "APAC"}},
    ],
)
def test_anything_a_person_changes_changes_the_key(bant: Framework, change: dict[str, object]) -> None:
    fw = framework_key(bant)
    assert judgement_key(replace(DEAL, **change), TODAY, fw) != judgement_key(DEAL, TODAY, fw)  # type: ignore[arg-type]


def test_the_day_and_the_framework_are_in_the_key(bant: Framework, meddic: Framework) -> None:
    key = judgement_key(DEAL, TODAY, framework_key(bant))
    assert judgement_key(DEAL, date(2026, 12, 2), framework_key(bant)) != key
    assert judgement_key(DEAL, TODAY, framework_key(meddic)) != key
    assert framework_key(bant) == framework_key(bant)


def _entry(state: LedgerState, key: str = "k1", status: str = "poc_unqualified") -> LedgerEntry:
    return LedgerEntry(key, "006A", "00T1", state, ("authority", "timing"), status)


def test_a_task_is_as_left_only_when_the_ledger_matches_the_verdict(bant: Framework) -> None:
    flagged = evaluate(DEAL, bant, TODAY)
    assert flagged.status.value == "poc_unqualified" and flagged.missing == ("authority", "timing")
    assert task_as_left(flagged, [_entry(LedgerState.OPEN)], "k1")
    assert not task_as_left(flagged, [], "k1"), "no task: look it up"
    assert not task_as_left(flagged, [_entry(LedgerState.OPEN, key="old")], "k1"), "under an old key"
    assert not task_as_left(flagged, [_entry(LedgerState.COMPLETED)], "k1")
    assert not task_as_left(flagged, [_entry(LedgerState.OPEN, status="needs_qualification")], "k1")
    assert not task_as_left(flagged, [_entry(LedgerState.OPEN), _entry(LedgerState.INTENDED, "k2")], "k1")
    qualified = evaluate(replace(DEAL, authority="CFO", timing="Q1"), bant, TODAY)
    assert task_as_left(qualified, [], "k1")
    assert task_as_left(qualified, [_entry(LedgerState.COMPLETED)], "k1")
    assert not task_as_left(qualified, [_entry(LedgerState.OPEN)], "k1"), "an open task to complete"
    assert not task_as_left(qualified, [_entry(LedgerState.INTENDED)], "k1"), "a lost create to find"
