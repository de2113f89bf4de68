"""The planner: status writes only when the CRM shows something else, and one open task per unqualified deal,
reconciled against the CRM's task and the ledger's record of the verdict bant-sync last wrote into it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.model import CONTENT_FIELDS, CrmTask, TaskAction, TaskField, TaskWrite
from connectors.task_keys import retired_key
from rules import Assessment, Deal, DealFlags, Framework, Status, evaluate
from rules.model import Gap
from worker.state.ledger import LedgerEntry
from worker.sync.follow_up import follow_up_description, follow_up_subject
from worker.sync.planner import PlanContext, TaskFacts, plan_closing, plan_page, plan_statuses, plan_task

TODAY = date(2026, 11, 27)  # a Friday
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CTX = PlanContext(TODAY, NOW, 3)
KEY = "bs2-0123456789abcdef-D1"
LEGACY = "bs1-0123456789abcdef01234567-D1"
NQ, POC, OUT = "needs_qualification", "poc_unqualified", "qualify_out"
CONTENT_AND_DUE = CONTENT_FIELDS | {TaskField.DUE}
NONE: frozenset[TaskField] = frozenset()
REKEY = frozenset({TaskField.KEY})


def assess(status: str = NQ, missing: tuple[str, ...] = ("budget",), poc: bool = False) -> Assessment:
    """An assessment of deal D1 (gaps named after the missing criteria)."""
    verdict = Status(status)
    if not verdict.is_unqualified:
        return Assessment("D1", verdict, (), 100, (), poc, None)
    gaps = tuple(Gap(c, c.title(), f"Confirm the {c}.", c, f"{c.title()}: empty") for c in missing)
    reasons = tuple(g.reason for g in gaps)
    return Assessment("D1", verdict, missing, 50, reasons, poc, TODAY, gaps)


def deal(status: str | None = NQ, missing: tuple[str, ...] | None = ("budget",)) -> Deal:
    """Deal D1 as the CRM shows it: bant-sync's status and missing fields as given."""
    return Deal(id="D1", name="Acme POC", owner_id="005A", flags=DealFlags(status, missing))


def crm(is_open: bool = True, key: str = KEY, task_id: str = "T1") -> CrmTask:
    return CrmTask(task_id, key, is_open)


def row(
    state: str = "open",
    status: str | None = NQ,
    missing: tuple[str, ...] = ("budget",),
    task_id: str | None = "T1",
    key: str = KEY,
) -> LedgerEntry:
    return LedgerEntry(key, "D1", task_id, state, missing, status)


def shape(writes: list[TaskWrite]) -> list[tuple[TaskAction, frozenset[TaskField], str, str | None]]:
    return [(w.action, w.fields, w.sync_key, w.task_id) for w in writes]


CREATE = [(TaskAction.CREATE, NONE, KEY, None)]
COMPLETE = [(TaskAction.COMPLETE, NONE, KEY, "T1")]


def update(fields: frozenset[TaskField]) -> list[tuple[TaskAction, frozenset[TaskField], str, str | None]]:
    return [(TaskAction.UPDATE, fields, KEY, "T1")]


def reopen(
    fields: frozenset[TaskField] = CONTENT_AND_DUE,
) -> list[tuple[TaskAction, frozenset[TaskField], str, str]]:
    return [(TaskAction.REOPEN, fields, KEY, "T1")]


NEW_TASK = [(TaskAction.UPDATE, REKEY, retired_key(KEY, "T1"), "T1"), *CREATE]


@pytest.mark.parametrize(
    ("assessment", "shown", "task", "entry", "policy", "expected"),
    [
        (assess(), deal(None, None), None, None, "reopen", CREATE),
        (assess(), deal(), None, row("intended", task_id=None), "reopen", CREATE),
        (assess(), deal(), crm(), row(), "reopen", []),
        (assess(missing=("budget", "need")), deal(), crm(), row(), "reopen", update(CONTENT_FIELDS)),
        (assess(), deal(POC), crm(), row(status=POC), "reopen", update(CONTENT_FIELDS)),
        (assess(OUT), deal(), crm(), row(), "reopen", update(CONTENT_AND_DUE)),
        (assess(POC, poc=True), deal(), crm(), row(), "reopen", update(CONTENT_AND_DUE)),
        (assess(OUT), deal(OUT), crm(), row(status=OUT), "reopen", []),
        (
            assess(OUT, ("budget", "need")),
            deal(OUT),
            crm(),
            row(status=OUT),
            "reopen",
            update(CONTENT_FIELDS),
        ),
        (assess(), deal(), crm(), row(missing=("need",), task_id="T0"), "reopen", []),
        (assess(), deal(NQ, ("need",)), crm(), None, "reopen", update(CONTENT_FIELDS)),
        (assess(), deal(NQ, ("budget",)), crm(), row(status=None), "reopen", []),
        (assess(), deal(), crm(is_open=False), row(), "reopen", reopen()),
        (assess(), deal(), crm(is_open=False), row(), "new_task", NEW_TASK),
        (assess(), deal(), crm(is_open=False), row(), "leave", []),
        (assess(OUT), deal(), crm(is_open=False), row(), "leave", reopen()),
        (assess(), deal(), crm(is_open=False), row("completed"), "leave", reopen()),
        (assess(), deal(), crm(is_open=False), row("completed"), "new_task", reopen()),
        (assess(), deal(), crm(is_open=False), row("completed", task_id="T0"), "leave", []),
        (assess("qualified"), deal(), crm(), row(), "reopen", COMPLETE),
        (assess("not_evaluated"), deal(), crm(), row(), "reopen", COMPLETE),
        (assess("qualified"), deal(), crm(is_open=False), row("completed"), "reopen", []),
        (assess("qualified"), deal(), None, None, "reopen", []),
        (assess(), deal(), crm(key=LEGACY), row(key=LEGACY, status=None), "reopen", update(REKEY)),
        (
            assess(missing=("need",)),
            deal(),
            crm(key=LEGACY),
            row(key=LEGACY, status=None),
            "reopen",
            update(REKEY | CONTENT_FIELDS),
        ),
        (assess(), deal(), crm(False, LEGACY), row(key=LEGACY), "reopen", reopen(CONTENT_AND_DUE | REKEY)),
        (
            assess("qualified"),
            deal(),
            crm(key=LEGACY),
            row(key=LEGACY),
            "reopen",
            [(TaskAction.COMPLETE, REKEY, KEY, "T1")],
        ),
        (assess(), deal(), crm(False, LEGACY), row(key=LEGACY), "leave", update(REKEY)),
        (
            assess("qualified"),
            deal(),
            crm(False, LEGACY),
            row("completed", key=LEGACY),
            "reopen",
            update(REKEY),
        ),
        (assess(), deal(), crm(False, LEGACY), row(key=LEGACY), "new_task", NEW_TASK),
    ],
    ids=[
        "no-task-creates",
        "intended-row-without-task-creates",
        "open-same-verdict-left-alone",
        "open-missing-changed-rewrites-content",
        "open-status-eased-rewrites-content-keeps-due",
        "escalated-to-qualify-out-also-moves-due",
        "escalated-to-poc-also-moves-due",
        "still-qualify-out-same-verdict-left-alone",
        "still-qualify-out-missing-changed-keeps-due",
        "ledger-row-of-another-task-ignored-deal-shows-same",
        "no-ledger-row-deal-showed-other-missing",
        "pre-0.2-row-status-read-from-the-deal",
        "person-completed-reopen",
        "person-completed-new-task-retires-key-and-creates",
        "person-completed-leave",
        "person-completed-leave-but-escalated-reopens",
        "bant-sync-completed-reopens-despite-leave",
        "bant-sync-completed-reopens-despite-new-task",
        "completed-under-another-task-id-is-a-persons",
        "qualified-completes-open-task",
        "not-evaluated-completes-open-task",
        "qualified-completed-task-left",
        "qualified-no-task-nothing",
        "legacy-key-open-rekeyed",
        "legacy-key-open-rekeyed-and-rewritten",
        "legacy-key-person-completed-reopened-and-rekeyed",
        "legacy-key-qualified-completed-and-rekeyed",
        "legacy-key-left-completed-still-rekeyed",
        "legacy-key-qualified-already-completed-rekeyed",
        "legacy-key-new-task-retires-it-instead",
    ],
)
def test_plan_task(
    assessment: Assessment,
    shown: Deal,
    task: CrmTask | None,
    entry: LedgerEntry | None,
    policy: str,
    expected: list[tuple[TaskAction, frozenset[TaskField], str, str | None]],
) -> None:
    """Each case of the module's rules gives exactly these task writes (action, fields written, key, id)."""
    ctx = PlanContext(TODAY, NOW, 3, completed_tasks=policy)
    assert shape(plan_task(shown, assessment, TaskFacts(KEY, task, entry), ctx)) == expected


def test_task_content_tells_the_rep_what_to_confirm(bant: Framework) -> None:
    """A new POC task is owned by the deal owner, high priority, due in 3 business days, and worded by the
    follow-up wording from the assessment's gaps, with the CRM's field names."""
    d = Deal(id="D1", name="Acme POC", owner_id="005A", deal_type="POC", budget="TBD", authority="CFO")
    a = evaluate(d, bant, TODAY)
    ctx = PlanContext(TODAY, NOW, 3, field_names={"budget": "BANT_Budget__c"})
    (write,) = plan_task(d, a, TaskFacts(KEY), ctx)
    assert (write.owner_id, write.priority, write.due) == ("005A", "High", date(2026, 12, 2))
    assert write.subject == follow_up_subject("Acme POC", a.gaps, "poc_unqualified")
    assert write.description == follow_up_description(
        "Acme POC", a.gaps, "poc_unqualified", ctx.field_names, False
    )


@pytest.mark.parametrize(
    ("assessment", "priority"),
    [
        (assess(), "Normal"),
        (assess(POC, poc=True), "High"),
        (assess(OUT), "High"),
        (assess(OUT, poc=True), "High"),
    ],
    ids=["ordinary", "poc", "qualify-out", "poc-qualify-out"],
)
def test_priority_is_high_for_pocs_and_qualify_out(assessment: Assessment, priority: str) -> None:
    """Ordinary follow-ups are Normal; a POC's or a qualify-out deal's are High."""
    (write,) = plan_task(deal(None, None), assessment, TaskFacts(KEY), CTX)
    assert write.priority == priority


@pytest.mark.parametrize(
    ("entry", "reopened"),
    [(row(), True), (row("completed"), False)],
    ids=["a-person-completed-it", "bant-sync-completed-it"],
)
def test_a_reopened_task_says_so_only_when_a_person_had_completed_it(
    entry: LedgerEntry, reopened: bool
) -> None:
    """Reopening a task a person completed words it as reopened (its first line says what is still
    missing); reopening one bant-sync completed (the deal had qualified) words it as new."""
    a = assess()
    (write,) = plan_task(deal(), a, TaskFacts(KEY, crm(is_open=False), entry), CTX)
    assert write.action is TaskAction.REOPEN
    assert write.description == follow_up_description("Acme POC", a.gaps, NQ, {}, reopened)
    assert write.description != follow_up_description("Acme POC", a.gaps, NQ, {}, not reopened)


def test_facts_under_another_key_are_adopting() -> None:
    """TaskFacts is adopting exactly when the CRM's task sits under a key other than the deal's."""
    assert TaskFacts(KEY, crm(key=LEGACY)).adopting
    assert not TaskFacts(KEY, crm()).adopting
    assert not TaskFacts(KEY).adopting


SHOWN_REASONS = "Budget: empty — Confirm the budget."
"""The reasons field as bant-sync writes it for `assess()`."""


@pytest.mark.parametrize(
    ("shown", "flagged_since", "written"),
    [
        (DealFlags(NQ, ("budget",), 50, reasons=SHOWN_REASONS), TODAY, False),
        (DealFlags(NQ, ("budget",), 50), TODAY, True),
        (DealFlags(NQ, ("need",), 50), TODAY, True),
        (DealFlags(NQ, ("budget",), 75), TODAY, True),
        (DealFlags(POC, ("budget",), 50), TODAY, True),
        (DealFlags(NQ, ("budget",), 50), date(2026, 11, 20), True),
        (DealFlags(), None, True),
    ],
    ids=[
        "same",
        "reasons-differ",
        "missing-differs",
        "score-differs",
        "status-differs",
        "flagged-since-differs",
        "first-seen",
    ],
)
def test_plan_statuses_writes_only_what_the_crm_shows_otherwise(
    shown: DealFlags, flagged_since: date | None, written: bool
) -> None:
    """A status write goes out when status, missing, score, flagged-since or the reasons shown differ from
    the assessment, carrying the assessment and the run's time."""
    seen = Deal(id="D1", flags=shown, flagged_since=flagged_since)
    writes = plan_statuses([seen], [seen], [assess()], CTX)
    assert bool(writes) is written
    if written:
        (write,) = writes
        assert (write.status, write.missing, write.score, write.checked_at, write.flagged_since) == (
            Status.NEEDS_QUALIFICATION,
            ("budget",),
            50,
            NOW,
            TODAY,
        )


def test_plan_statuses_compares_against_what_the_crm_showed() -> None:
    """`shown` is what the CRM showed: a deal whose stored clock differs from the CRM's flagged-since field
    gets a write putting the assessed date back."""
    flags = DealFlags(NQ, ("budget",), 50, reasons=SHOWN_REASONS)
    clocked = Deal(id="D1", flags=flags, flagged_since=TODAY)
    shown = Deal(id="D1", flags=flags, flagged_since=None)
    assert plan_statuses([clocked], [clocked], [assess()], CTX) == ()
    (write,) = plan_statuses([clocked], [shown], [assess()], CTX)
    assert write.flagged_since == TODAY


def test_plan_page_holds_status_writes_then_task_writes_in_deal_order() -> None:
    """plan_page plans every deal of a page from its own facts: status writes, then task writes, in order."""
    deals = [Deal(id=d, name=d, owner_id="005A") for d in ("D1", "D2", "D3")]
    assessments = [
        Assessment("D1", Status.NEEDS_QUALIFICATION, ("budget",), 75, ("Budget: empty",), False, TODAY),
        Assessment("D2", Status.QUALIFIED, (), 100, (), False, None),
        Assessment("D3", Status.NEEDS_QUALIFICATION, ("need",), 75, ("Need: empty",), False, TODAY),
    ]
    facts = {"D1": TaskFacts("k1"), "D2": TaskFacts("k2", crm(key="k2", task_id="T2")), "D3": TaskFacts("k3")}
    plan = plan_page(deals, assessments, facts, CTX)
    assert [w.deal_id for w in plan.status_writes] == ["D1", "D2", "D3"]
    assert [(w.deal_id, w.action, w.sync_key) for w in plan.task_writes] == [
        ("D1", TaskAction.CREATE, "k1"),
        ("D2", TaskAction.COMPLETE, "k2"),
        ("D3", TaskAction.CREATE, "k3"),
    ]


def test_plan_closing_completes_the_open_tasks_of_deals_gone_from_the_run() -> None:
    """Open tasks of deals the run no longer sees are completed by id, in key order; closed ones are left."""
    tasks = {
        "k9": crm(key="k9", task_id="T9"),
        "k2": crm(key="k2", task_id="T2"),
        "k5": crm(False, "k5", "T5"),
    }
    plan = plan_closing(tasks, {"k9": "D9", "k2": "D2", "k5": "D5"}, CTX)
    assert plan.status_writes == ()
    assert [(w.action, w.sync_key, w.deal_id, w.task_id) for w in plan.task_writes] == [
        (TaskAction.COMPLETE, "k2", "D2", "T2"),
        (TaskAction.COMPLETE, "k9", "D9", "T9"),
    ]
