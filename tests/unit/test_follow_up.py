"""Follow-up task wording and business-day due dates (the same on every CRM), and the task keys."""

from __future__ import annotations

import re
from datetime import date

import pytest

from connectors.task_keys import legacy_sync_key, retired_key, sync_key
from rules.model import Gap
from worker.sync.follow_up import (
    DESCRIPTION_MAX,
    SUBJECT_MAX,
    add_business_days,
    due_date,
    follow_up_description,
    follow_up_subject,
    prompt_for,
)


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


SF_ORG = "salesforce:00D5g000004ABCD"


def test_sync_key_is_derived_from_the_crm_identity_and_the_deal() -> None:
    """Same CRM account and deal → same key (pinned: a changed formula would duplicate every task);
    another account or deal → another key."""
    key = sync_key(SF_ORG, "006000000000001AAA")
    assert key == "bs2-141ad04902a26d8a-006000000000001AAA"
    assert key == sync_key(SF_ORG, "006000000000001AAA")
    assert key != sync_key("salesforce:00D5g000004ABCE", "006000000000001AAA")
    assert key != sync_key("hubspot:24681357", "006000000000001AAA")
    assert key != sync_key(SF_ORG, "006000000000002AAA")


@pytest.mark.parametrize(
    "key",
    [sync_key("hubspot:24681357", "9" * 80), legacy_sync_key("a-long-connection-name", "9" * 80)],
    ids=["current", "legacy"],
)
def test_keys_fit_salesforce_and_hubspot_limits(key: str) -> None:
    """A very long deal id is cut: the key is 64 characters, within both CRMs' limits."""
    assert len(key) == 64


def test_legacy_key_is_the_pre_0_2_key_named_after_the_connection() -> None:
    """legacy_sync_key reproduces the key bant-sync wrote before 0.2 (pinned), so old tasks are found and
    adopted; it never equals the current key."""
    legacy = legacy_sync_key("sf-prod", "006000000000001AAA")
    assert legacy == "bs1-c0a2c32389b949f4980a3dbb-006000000000001AAA"
    assert legacy != sync_key("sf-prod", "006000000000001AAA")


def test_retired_key_frees_the_key_and_names_the_task() -> None:
    """A retired key differs from the key it retires, names the task id, and fits in 64 characters."""
    key = sync_key(SF_ORG, "006000000000001AAA")
    assert retired_key(key, "00T5g00000XyZab") == f"{key}~done-00T5g00000XyZab"
    long_key = sync_key(SF_ORG, "9" * 80)
    retired = retired_key(long_key, "00T5g00000XyZab")
    assert retired != long_key and len(retired) <= 64 and retired.endswith("~done-00T5g00000XyZab")


BUDGET = Gap("budget", "Budget", "What budget is set aside?", "budget", "Budget: 'TBD' is a placeholder")
TIMING = Gap("timing", "Timing", "", "timing", "Timing: 'Q1 2024' has passed")
CHAMPION = Gap(
    "champion",
    "Champion",
    "Who will sell this internally?",
    "champion_name",
    "Champion: 'no one yet' says it is not known",
)
ECONOMIC_BUYER = Gap("economic_buyer", "Economic buyer", "", "authority", "Economic buyer: missing")
SF_FIELDS = {"budget": "BANT_Budget__c", "timing": "BANT_Timing__c", "champion_name": "Champion__c"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("needs_qualification", "[bant-sync] Initech: confirm Champion, Economic buyer"),
        ("poc_unqualified", "[bant-sync] Initech: POC without BANT — confirm Champion, Economic buyer"),
        ("qualify_out", "[bant-sync] Initech: qualify or close out — confirm Champion, Economic buyer"),
    ],
    ids=["ordinary", "poc", "qualify-out"],
)
def test_follow_up_subject_names_the_framework_labels(status: str, expected: str) -> None:
    """The subject names each gap by its framework label (not a label made from the criterion name)."""
    assert follow_up_subject("Initech", (CHAMPION, ECONOMIC_BUYER), status) == expected


def test_follow_up_subject_is_cut_to_the_salesforce_limit() -> None:
    """A long deal name never gives a subject over 255 characters; no gaps still reads sensibly."""
    subject = follow_up_subject("x" * 400, (BUDGET,), None)
    assert len(subject) == SUBJECT_MAX and subject.endswith("…")
    assert follow_up_subject(None, (), None) == "[bant-sync] deal: confirm qualification"


def test_follow_up_description_has_one_block_per_gap() -> None:
    """Each gap gets its label and question, why the value does not count, and the CRM field to update."""
    text = follow_up_description("Acme", (BUDGET, TIMING), "needs_qualification", SF_FIELDS)
    assert text.splitlines() == [
        "bant-sync found qualification gaps on Acme. Please confirm with the customer:",
        "- Budget: What budget is set aside?",
        "  Now: 'TBD' is a placeholder",
        "  Update: BANT_Budget__c",
        "- Timing: Confirm the decision date (not in the past) or the buying timeframe.",
        "  Now: 'Q1 2024' has passed",
        "  Update: BANT_Timing__c",
        "Update the fields on the deal; this task completes itself once the deal qualifies.",
    ]


def test_custom_framework_labels_hints_and_fields_come_through() -> None:
    """A MEDDIC-like gap shows its own label and hint, the mapped custom field, and no Update line when the
    field has no CRM name; a gap without a hint falls back to the generic prompt under its own label."""
    text = follow_up_description("Initech", (CHAMPION, ECONOMIC_BUYER), "poc_unqualified", SF_FIELDS)
    lines = text.splitlines()
    assert lines[1:6] == [
        "- Champion: Who will sell this internally?",
        "  Now: 'no one yet' says it is not known",
        "  Update: Champion__c",
        "- Economic buyer: Confirm it with the customer and record it on the deal.",
        "  Now: missing",
    ]
    assert lines[6] == "This is a POC: every criterion is required before the POC goes ahead."
    assert "Update: " not in "".join(lines[4:6])


@pytest.mark.parametrize(
    ("status", "reopened", "first", "before_last"),
    [
        (
            "qualify_out",
            False,
            "bant-sync found qualification gaps on Acme. Please confirm with the customer:",
            "This deal has been unqualified for a long time: qualify it or close it out.",
        ),
        (
            "needs_qualification",
            True,
            "Reopened by bant-sync: Acme is still missing Budget, Timing.",
            "  Update: BANT_Timing__c",
        ),
    ],
    ids=["qualify-out", "reopened"],
)
def test_follow_up_description_status_and_reopened_lines(
    status: str, reopened: bool, first: str, before_last: str
) -> None:
    """Qualify-out deals are told to qualify or close; a reopened task says why it came back, first."""
    lines = follow_up_description("Acme", (BUDGET, TIMING), status, SF_FIELDS, reopened=reopened).splitlines()
    assert lines[0] == first
    assert lines[-2] == before_last
    assert lines[-1] == "Update the fields on the deal; this task completes itself once the deal qualifies."


def test_follow_up_description_is_deterministic_and_capped() -> None:
    """The same gaps give the same text; a huge reason never makes it longer than Salesforce accepts."""
    assert follow_up_description("Acme", (BUDGET,), None, {}) == follow_up_description(
        "Acme", (BUDGET,), None, {}
    )
    huge = Gap("need", "Need", "", "need", "Need: " + "x" * 40_000)
    text = follow_up_description("Acme", (huge,), None, {})
    assert len(text) == DESCRIPTION_MAX and text.endswith("…")


TROJAN = "Acme\u202e\u2066 renewal\u200b\u0007"
"""A deal name with a right-to-left override, an isolate, a zero-width space and a bell character."""


def test_subjects_and_bodies_carry_no_invisible_characters() -> None:
    """Bidi overrides and zero-width characters from a deal name or a quoted value do not reach the task:
    a subject that reads backwards or two names that look alike are the CRM's data, not ours to copy."""
    gaps = (Gap("need", "Need", "", "need", "Need: 'te\u200dst\u202e' is junk"),)
    subject = follow_up_subject(TROJAN, gaps, "poc_unqualified")
    body = follow_up_description(TROJAN, gaps, "poc_unqualified", {"need": "Need__c"})
    assert subject == "[bant-sync] Acme renewal: POC without BANT — confirm Need"
    assert "Acme renewal" in body and "'test' is junk" in body
    for text in (subject, body):
        assert not any(ch in text for ch in "\u202e\u2066\u200b\u200d\u0007"), repr(text)
    assert body.count("\n") >= 3, "the body keeps its lines"


def test_a_name_of_only_invisible_characters_reads_as_no_name() -> None:
    assert follow_up_subject("\u202e\u200b", (), None) == "[bant-sync] deal: confirm qualification"


def test_long_deal_ids_are_carried_by_their_digest_never_cut() -> None:
    """A plugin CRM's ids too long to carry whole make a key of the digest alone (a cut id would read as
    another deal's), unique by the digest of the whole id and at most 64 characters."""
    first, second = "x" * 50 + "-0001", "x" * 50 + "-0002"
    keys = {sync_key("org", first), sync_key("org", second)}
    assert len(keys) == 2
    assert all(re.fullmatch("bs2-[0-9a-f]{60}", k) for k in keys), keys
    assert sync_key("org", "006000000000001AAA") == sync_key("org", "006000000000001AAA")
    assert sync_key("org", "006000000000001AAA").endswith("-006000000000001AAA"), "short ids stay readable"


def test_retired_keys_of_two_long_task_ids_differ() -> None:
    key = sync_key("org", "006000000000001AAA")
    a, b = "t" * 40 + "1", "t" * 40 + "2"
    assert retired_key(key, a) != retired_key(key, b)
    assert all(len(retired_key(key, t)) <= 64 for t in (a, b))
