"""The HubSpot connector against the sandbox, through the real hubspot-api-client (issue 4 "Show")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from connectors.contract import ConnectorContract
from connectors.errors import SchemaDriftError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.model import Cursor, OutcomeKind, RowOutcome, StatusWrite, WritePlan
from connectors.registry import ConnectorContext
from connectors.task_keys import sync_key
from rules import Deal, Framework, Status, evaluate
from worker.config.frameworks import load_framework
from worker.state import StateStore, StoreLedger
from worker.sync.ordered_apply import OrderedApply
from worker.sync.planner import PlanContext, plan_statuses
from worker.sync.task_sync import TaskSync

sandbox = pytest.importorskip("sandbox")
Sandbox = sandbox.Sandbox
SandboxOptions = sandbox.SandboxOptions
FaultRule = sandbox.FaultRule
PORTAL_ID = pytest.importorskip("sandbox.hubspot.portal").PORTAL_ID

WRITE_PATHS = ("/crm/v3/objects/deals/batch/update", "/crm/v3/objects/tasks/batch/create")


@pytest.fixture(scope="module")
def bant() -> Framework:
    return load_framework("bant")


def _start(**overrides: Any) -> Any:
    options = {"seed": "track-selling", "seed_value": 7, "enforce_rate_limits": False, **overrides}
    return Sandbox.start(SandboxOptions(**options))


@pytest.fixture
def hs_sandbox() -> Iterator[Any]:
    """A seeded sandbox with rate limits off (pacing is not the subject)."""
    sb = _start()
    try:
        yield sb
    finally:
        sb.stop()


@dataclass
class Harness:
    """A connector wired to the sandbox's clock; `sleep` advances that clock instead of waiting."""

    sb: Any
    connector: HubSpotConnector
    ledger: StoreLedger
    slept: list[float] = field(default_factory=list)


def _harness(sb: Any, ledger: StoreLedger, secrets: dict[str, str] | None = None, **settings: Any) -> Harness:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        sb.clock.advance(seconds)

    secrets = secrets or {"access_token": sb.info["hubspot"]["access_token"]}
    context = ConnectorContext("hs", secrets, sb.clock.now, sleep)
    base = {"host": sb.info["hubspot"]["host"], "burst_limit_per_10s": 10_000, "search_per_second": 1_000}
    connector = HubSpotConnector(HubSpotSettings(**{**base, **settings}), context)
    return Harness(sb, connector, ledger, slept)


@dataclass
class RunResult:
    deals: list[Deal]
    outcomes: list[RowOutcome]
    cursor: Cursor | None


def run(h: Harness, framework: Framework, cursor: Cursor | None = None, *, full: bool = False) -> RunResult:
    """One sync run: preflight, then page by page assess, read the page's tasks by key, plan (the worker's
    planner) and write (status first, then tasks through TaskSync, which keeps the ledger); the cursor
    after the last page."""
    h.connector.preflight()
    tasks = TaskSync(h.connector, h.ledger)
    writer = OrderedApply(h.connector, tasks)
    deals: list[Deal] = []
    outcomes: list[RowOutcome] = []
    newest = cursor
    for page in h.connector.fetch_changed(cursor, full=full):
        deals.extend(page.deals)
        now = h.sb.clock.now()
        ctx = PlanContext(now.date(), now, 3, field_names=h.connector.field_names)
        assessments = [evaluate(deal, framework, ctx.today) for deal in page.deals]
        facts = tasks.facts(page.deals, assessments)
        plan = WritePlan(
            plan_statuses(page.deals, page.deals, assessments, ctx),
            tuple(tasks.plan(page.deals, assessments, facts, ctx)),
        )
        if not plan.is_empty:
            outcomes.extend(writer.apply(plan))
        if page.cursor is not None:
            newest = max(newest, page.cursor) if newest else page.cursor
    return RunResult(deals, outcomes, newest)


def writes(sb: Any) -> list[dict[str, Any]]:
    return [r for r in sb.requests() if r["crm"] == "hubspot" and r["path"] in WRITE_PATHS]


def searches(sb: Any) -> list[dict[str, Any]]:
    return [r for r in sb.requests() if r["crm"] == "hubspot" and r["path"].endswith("/deals/search")]


def open_deal_ids(sb: Any) -> set[str]:
    return {d["id"] for d in sb.hubspot.deals() if d["properties"].get("hs_is_closed") != "true"}


def bant_tasks(sb: Any) -> list[dict[str, Any]]:
    return [t for t in sb.hubspot.tasks() if t["properties"].get("bant_sync_key")]


def open_tasks_of(sb: Any, deal_id: str) -> int:
    return sum(
        1
        for t in bant_tasks(sb)
        if deal_id in t["associations"].get("deals", [])
        and t["properties"].get("hs_task_status") != "COMPLETED"
    )


def test_first_run_writes_status_and_one_task_per_unqualified_deal(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """A full run sees every open deal, writes its status, and gives each unqualified deal exactly one task
    associated to it."""
    h = _harness(hs_sandbox, hubspot_ledger)
    result = run(h, bant)
    assert {d.id for d in result.deals} == open_deal_ids(hs_sandbox)
    assert result.outcomes and all(o.kind is OutcomeKind.WRITTEN for o in result.outcomes)
    status_by_deal = {d["id"]: d["properties"].get("bant_status") for d in hs_sandbox.hubspot.deals()}
    unqualified = {
        i
        for i in open_deal_ids(hs_sandbox)
        if status_by_deal[i] in ("needs_qualification", "poc_unqualified", "qualify_out")
    }
    assert unqualified
    tasks = bant_tasks(hs_sandbox)
    keys = [t["properties"]["bant_sync_key"] for t in tasks]
    assert len(keys) == len(set(keys)) == len(unqualified)
    assert {d for t in tasks for d in t["associations"]["deals"]} == unqualified


def test_unchanged_rerun_makes_zero_writes(hs_sandbox: Any, bant: Framework, hubspot_ledger: Any) -> None:
    """Right after a run (its own writes inside the overlap) a rerun reads but writes nothing."""
    h = _harness(hs_sandbox, hubspot_ledger)
    first = run(h, bant)
    hs_sandbox.reset_requests()
    second = run(_harness(hs_sandbox, hubspot_ledger), bant, first.cursor)
    assert second.deals, "the rerun should see the deals our own writes touched"
    assert writes(hs_sandbox) == []
    assert second.outcomes == []


def test_25k_deals_changed_in_one_hour_all_seen_without_passing_10k(hubspot_ledger: Any) -> None:
    """25,000 deals edited within one hour are each seen once; no search asks past result 10,000."""
    sb = _start(seed="empty", deals=25_000)
    try:
        sb.clock.freeze()
        start = sb.clock.now()
        ids = [d["id"] for d in sb.hubspot.deals()]
        for deal_id in ids:
            sb.hubspot.update_deal(deal_id, {"bant_need": "An edit inside the hour"})
            sb.clock.advance(0.12)
        assert sb.clock.now() - start < timedelta(hours=1)
        sb.reset_requests()
        h = _harness(sb, hubspot_ledger, overlap_minutes=0)
        h.connector.preflight()
        seen = [d.id for page in h.connector.fetch_changed(Cursor(start, "")) for d in page.deals]
        assert len(seen) == len(set(seen)) == len(ids) == 25_000
        found = searches(sb)
        for request in found:
            body = request["body"] or {}
            assert int(body.get("after") or 0) + int(body.get("limit") or 0) <= 10_000
        assert all(r["status"] == 200 for r in found)
        assert len(found) <= 1.1 * 25_000 / 200
    finally:
        sb.stop()


def test_search_lag_loses_nothing(hs_sandbox: Any, bant: Framework, hubspot_ledger: Any) -> None:
    """A deal edited while search lags 5 minutes is missed by the next run but caught by the one after,
    thanks to the overlap window."""
    h = _harness(hs_sandbox, hubspot_ledger)
    first = run(h, bant)
    hs_sandbox.hubspot.set_search_lag(300)
    target = first.deals[0].id
    hs_sandbox.clock.advance(30)
    hs_sandbox.hubspot.update_deal(target, {"bant_budget": "USD 90k signed off"})
    hs_sandbox.clock.advance(60)
    second = run(_harness(hs_sandbox, hubspot_ledger), bant, first.cursor)
    assert all(d.budget != "USD 90k signed off" for d in second.deals if d.id == target)
    hs_sandbox.clock.advance(600)
    third = run(_harness(hs_sandbox, hubspot_ledger), bant, second.cursor)
    assert any(d.id == target and d.budget == "USD 90k signed off" for d in third.deals)


def test_property_deleted_between_runs_stops_and_flags_no_deal(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """A BANT property deleted between runs stops the connection naming it; nothing is written."""
    run(_harness(hs_sandbox, hubspot_ledger), bant)
    hs_sandbox.hubspot.delete_property("deals", "bant_budget")
    hs_sandbox.reset_requests()
    with pytest.raises(SchemaDriftError) as info:
        run(_harness(hs_sandbox, hubspot_ledger), bant)
    assert "bant_budget" in info.value.fields and "bant_budget" in str(info.value)
    assert writes(hs_sandbox) == []


def test_property_deleted_after_preflight_stops_before_the_first_page(
    hs_sandbox: Any, hubspot_ledger: Any
) -> None:
    """bant_budget deleted after preflight (before any search): the first search answers without it and
    the stream raises SchemaDriftError naming it and what to do, instead of a page of empty budgets."""
    h = _harness(hs_sandbox, hubspot_ledger)
    h.connector.preflight()
    hs_sandbox.hubspot.delete_property("deals", "bant_budget")
    with pytest.raises(SchemaDriftError) as caught:
        next(iter(h.connector.fetch_changed(None, full=True)))
    assert caught.value.fields == ("bant_budget",)
    assert "bant_budget (budget)" in str(caught.value) and "bant-sync setup" in str(caught.value)


def test_every_search_of_a_page_is_checked(hs_sandbox: Any, hubspot_ledger: Any) -> None:
    """Three searches of 20 make one Page: a property deleted before the second search stops the stream
    before that Page is handed on, though the first search had it. (A run without a cursor searches; a
    full sweep at these limits would list, tests/connectors/test_hubspot_list_sweep.py.)"""
    h = _harness(hs_sandbox, hubspot_ledger, page_size=20, deals_per_page=80)
    h.connector.preflight()
    hs_sandbox.add_fault(
        FaultRule(
            kind="schema_change",
            crm="hubspot",
            path=r"/deals/search$",
            nth=2,
            object_name="deals",
            field_name="bant_authority",
        )
    )
    pages = iter(h.connector.fetch_changed(None))
    with pytest.raises(SchemaDriftError) as caught:
        next(pages)
    assert caught.value.fields == ("bant_authority",)
    assert len(searches(hs_sandbox)) == 2


def test_unset_properties_come_back_null_and_are_not_drift(hs_sandbox: Any, hubspot_ledger: Any) -> None:
    """Deals that never had bant_status or bant_budget set read fine: HubSpot answers a requested property
    without a value as null, which is an empty value, not a vanished property."""
    h = _harness(hs_sandbox, hubspot_ledger)
    h.connector.preflight()
    deals = [d for page in h.connector.fetch_changed(None, full=True) for d in page.deals]
    assert deals and all(d.flags.status is None for d in deals)
    assert any(d.budget is None for d in deals)


def test_fetch_one_after_the_property_vanished_is_drift(hs_sandbox: Any, hubspot_ledger: Any) -> None:
    """A single-deal read (GET by id, which ignores unknown properties) after bant_need was deleted fails
    naming it instead of returning a deal with no need."""
    h = _harness(hs_sandbox, hubspot_ledger)
    h.connector.preflight()
    hs_sandbox.hubspot.delete_property("deals", "bant_need")
    with pytest.raises(SchemaDriftError) as caught:
        h.connector.fetch_one(next(iter(open_deal_ids(hs_sandbox))))
    assert caught.value.fields == ("bant_need",)


def test_207_partial_failure_gives_per_row_outcomes(hs_sandbox: Any, hubspot_ledger: Any) -> None:
    """Rows refused inside a 207 are rejected with HubSpot's category; the others are written."""
    h = _harness(hs_sandbox, hubspot_ledger)
    h.connector.preflight()
    deals = [d for page in h.connector.fetch_changed(None, full=True) for d in page.deals][:5]
    hs_sandbox.add_fault(
        FaultRule(
            kind="partial_batch",
            crm="hubspot",
            path=r"/deals/batch/update$",
            rows=(1, 3),
            times=1,
            error_code="VALIDATION_ERROR",
            message="Property values were not valid",
        )
    )
    now = hs_sandbox.clock.now()
    plan = WritePlan(tuple(StatusWrite(d.id, Status.QUALIFIED, (), 100, now, None) for d in deals))
    outcomes = h.connector.apply(plan)
    kinds = [o.kind for o in outcomes]
    assert kinds == [
        OutcomeKind.WRITTEN,
        OutcomeKind.REJECTED,
        OutcomeKind.WRITTEN,
        OutcomeKind.REJECTED,
        OutcomeKind.WRITTEN,
    ]
    assert outcomes[1].code and outcomes[1].message
    shown = {d["id"]: d["properties"].get("bant_status") for d in hs_sandbox.hubspot.deals()}
    assert [shown[d.id] == "qualified" for d in deals] == [True, False, True, False, True]


def test_commit_then_drop_on_task_create_gives_no_duplicate(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """The task batch/create is applied but its response lost: reconciled by key, no task twice."""
    hs_sandbox.add_fault(
        FaultRule(
            kind="commit_then_drop", crm="hubspot", method="POST", path=r"/tasks/batch/create$", times=1
        )
    )
    result = run(_harness(hs_sandbox, hubspot_ledger), bant)
    task_outcomes = [o for o in result.outcomes if o.target.value == "task"]
    assert task_outcomes and all(o.kind is OutcomeKind.WRITTEN for o in task_outcomes)
    keys = [t["properties"]["bant_sync_key"] for t in bant_tasks(hs_sandbox)]
    assert len(keys) == len(set(keys)) == len(task_outcomes)
    entries = [e for rows in hubspot_ledger.unsettled().values() for e in rows]
    assert sorted((e.sync_key, e.state) for e in entries) == sorted((k, "open") for k in keys)
    paths = [r["path"] for r in hs_sandbox.requests()]
    assert paths.count("/crm/v3/objects/tasks/batch/create") == 1
    assert "/crm/v3/objects/tasks/batch/read" in paths[paths.index("/crm/v3/objects/tasks/batch/create") :]


def test_identity_is_the_portal_id_and_keys_the_tasks(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """identity is `hubspot:<portalId>` from GET /account-info/v3/details (read once per preflight), and
    each task a run creates is keyed from it and its deal."""
    h = _harness(hs_sandbox, hubspot_ledger)
    run(h, bant)
    identity = h.connector.identity
    assert identity == f"hubspot:{PORTAL_ID}"
    details = [r for r in hs_sandbox.requests() if r["path"] == "/account-info/v3/details"]
    assert [r["method"] for r in details] == ["GET"]
    tasks = bant_tasks(hs_sandbox)
    assert tasks
    for task in tasks:
        (deal_id,) = task["associations"]["deals"]
        assert task["properties"]["bant_sync_key"] == sync_key(identity, deal_id)


def test_a_fresh_ledger_finds_the_tasks_by_key_and_creates_none(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """A renamed connection or a second install (an empty ledger) against the same portal reads the tasks
    under their keys and writes nothing: keys come from the portal, not from the connection's name."""
    run(_harness(hs_sandbox, hubspot_ledger), bant)
    before = len(bant_tasks(hs_sandbox))
    hs_sandbox.reset_requests()
    other = StateStore.open("sqlite://")
    try:
        again = run(_harness(hs_sandbox, other.ledger("hs-renamed")), bant, full=True)
    finally:
        other.close()
    assert again.outcomes == [] and writes(hs_sandbox) == []
    assert len(bant_tasks(hs_sandbox)) == before


def test_a_task_a_person_completed_is_reopened_while_its_deal_is_unqualified(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """A rep completes a follow-up task of a deal that is still unqualified: the next run reopens that same
    task (NOT_STARTED) rather than creating another; the deal keeps one task."""
    run(_harness(hs_sandbox, hubspot_ledger), bant)
    task = bant_tasks(hs_sandbox)[0]
    (deal_id,) = task["associations"]["deals"]
    with hs_sandbox.hubspot.lock:
        hs_sandbox.hubspot.update("tasks", task["id"], {"hs_task_status": "COMPLETED"})
    assert open_tasks_of(hs_sandbox, deal_id) == 0
    again = run(_harness(hs_sandbox, hubspot_ledger), bant, full=True)
    assert [(o.deal_id, o.kind, o.task_id) for o in again.outcomes if o.target.value == "task"] == [
        (deal_id, OutcomeKind.WRITTEN, task["id"])
    ]
    mine = [t for t in bant_tasks(hs_sandbox) if deal_id in t["associations"]["deals"]]
    assert [(t["id"], t["properties"]["hs_task_status"]) for t in mine] == [(task["id"], "NOT_STARTED")]


def test_429_storm_completes_within_the_burst_limit(bant: Framework, hubspot_ledger: Any) -> None:
    """Under a storm of 429s with Retry-After and enforced limits, the run completes and no 10-second
    window ever holds more calls than the configured burst limit."""
    sb = _start(
        seed="empty",
        deals=3_000,
        enforce_rate_limits=True,
        hubspot_burst_per_10s=30,
        hubspot_search_per_second=5,
    )
    try:
        sb.clock.freeze()
        sb.add_fault(
            FaultRule(
                kind="status",
                crm="hubspot",
                path=r"/batch/",
                status=429,
                probability=0.3,
                headers={"Retry-After": "2"},
                body={
                    "status": "error",
                    "message": "storm",
                    "errorType": "RATE_LIMIT",
                    "policyName": "TEN_SECONDLY_ROLLING",
                },
            )
        )
        h = _harness(
            sb,
            hubspot_ledger,
            burst_limit_per_10s=25,
            search_per_second=4,
            run_retry_budget=1000,
            max_attempts=10,
        )
        result = run(h, bant)
        assert len(result.deals) == 3_000
        assert result.outcomes and all(o.kind is OutcomeKind.WRITTEN for o in result.outcomes)
        assert h.connector.limiter.waited > 0
        log = [r for r in sb.requests() if r["crm"] == "hubspot"]
        assert len(log) > 60
        assert any(r["status"] == 429 for r in log)
        stamps = sorted(_ts(r["ts"]) for r in log if not r["path"].endswith("/search"))
        for i, first in enumerate(stamps):
            window = [s for s in stamps[i:] if s < first + timedelta(seconds=10)]
            assert len(window) <= 25
    finally:
        sb.stop()


def _ts(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


class HubSpotContractEnv:
    """The shared contract suite's view of a seeded sandbox (its connectors keep no task state)."""

    def __init__(self, sb: Any, ledger: Any) -> None:
        self.sb = sb
        self.ledger = ledger

    def connector(self) -> HubSpotConnector:
        return _harness(self.sb, self.ledger).connector

    def now(self) -> datetime:
        now: datetime = self.sb.clock.now()
        return now

    def advance(self, seconds: float) -> None:
        self.sb.clock.advance(seconds)

    def edit_deal(self, deal_id: str, field: str, value: str) -> None:
        self.sb.hubspot.update_deal(deal_id, {HubSpotSettings().prop(field): value})

    def write_calls(self) -> int:
        return sum(
            1
            for r in self.sb.requests()
            if r["method"] in ("POST", "PATCH") and "/batch/" in r["path"] and not r["path"].endswith("/read")
        )

    def open_tasks(self, deal_id: str) -> int:
        return open_tasks_of(self.sb, deal_id)

    def open_deal_count(self) -> int:
        return len(open_deal_ids(self.sb))

    def unknown_deal_id(self) -> str:
        return "987654321098"


class TestHubSpotContract(ConnectorContract):
    """The HubSpot connector passes the same contract suite as every connector."""

    @pytest.fixture
    def connector_env(self, hs_sandbox: Any, hubspot_ledger: Any) -> HubSpotContractEnv:
        return HubSpotContractEnv(hs_sandbox, hubspot_ledger)


def test_oauth_session_expiry_mid_run_refreshes_once_and_completes(
    hs_sandbox: Any, bant: Framework, hubspot_ledger: Any
) -> None:
    """OAuth: when HubSpot revokes the token mid-run, the connector refreshes it and the run completes."""
    hs = hs_sandbox.info["hubspot"]
    hs_sandbox.add_fault(FaultRule(kind="session_expiry", crm="hubspot", after_calls=4))
    secrets = {"client_secret": hs["client_secret"], "refresh_token": hs["refresh_token"]}
    h = _harness(hs_sandbox, hubspot_ledger, secrets, auth="oauth", client_id=hs["client_id"])
    result = run(h, bant)
    assert result.outcomes and all(o.kind is OutcomeKind.WRITTEN for o in result.outcomes)
    log = hs_sandbox.requests()
    assert any(r["status"] == 401 for r in log)
    assert sum(1 for r in log if r["path"] == "/oauth/v1/token") == 2


def test_setup_creates_group_and_output_properties_once(hubspot_ledger: Any) -> None:
    """On a bare account setup creates the group and output properties; a second run changes nothing and
    preflight then passes."""
    sb = _start(bare=True)
    try:
        connector = _harness(sb, hubspot_ledger).connector
        with pytest.raises(SchemaDriftError):
            connector.preflight()
        first = connector.setup()
        assert first.ok and "deals.bant_status" in first.created and "tasks.bant_sync_key" in first.created
        sb.reset_requests()
        second = connector.setup()
        assert second.created == () and second.ok
        assert not [r for r in sb.requests() if r["method"] in ("POST", "PATCH", "DELETE")]
        connector.preflight()
    finally:
        sb.stop()


def test_setup_creates_the_input_properties_only_when_asked(hubspot_ledger: Any) -> None:
    """Without `--create-inputs` a missing BANT input is a problem naming the flag; with it, setup creates
    the property with its type (Need as a multi-line text) in the bant-sync group, and preflight passes."""
    sb = _start(bare=True)
    try:
        for name in ("bant_budget", "bant_need"):
            sb.hubspot.delete_property("deals", name)
        connector = _harness(sb, hubspot_ledger).connector
        refused = connector.setup()
        assert not refused.ready
        assert any("'bant_need'" in p and "--create-inputs" in p for p in refused.problems)
        assert "deals.bant_snooze_until" in refused.created, "the snooze properties are bant-sync's own"
        made = connector.setup(create_inputs=True)
        assert made.ready and {"deals.bant_budget", "deals.bant_need"} <= set(made.created)
        props = {n: p.render() for n, p in sb.hubspot.store("deals").registry.properties.items()}
        assert (props["bant_need"]["type"], props["bant_need"]["fieldType"]) == ("string", "textarea")
        assert props["bant_need"]["groupName"] == "bant_sync"
        assert (props["bant_snooze_until"]["type"], props["bant_snooze_until"]["fieldType"]) == (
            "date",
            "date",
        )
        connector.preflight()
    finally:
        sb.stop()


def test_setup_adds_a_missing_status_option_and_keeps_the_admins_labels(hubspot_ledger: Any) -> None:
    """A status property made by an older bant-sync lacks `snoozed`: preflight says so (a write of it would
    be refused), setup adds it keeping the options and labels already there, and preflight passes."""
    sb = _start()
    try:
        registry = sb.hubspot.store("deals").registry
        old = registry.properties["bant_status"]
        kept = tuple(
            (v, "Qualifiziert" if v == "qualified" else label) for v, label in old.options if v != "snoozed"
        )
        registry.properties["bant_status"] = dataclasses.replace(old, options=kept)
        connector = _harness(sb, hubspot_ledger).connector
        with pytest.raises(SchemaDriftError, match="lacks the options snoozed"):
            connector.preflight()
        report = connector.setup()
        assert "deals.bant_status options snoozed" in report.created
        options = registry.properties["bant_status"].options
        assert options[-1][0] == "snoozed" and ("qualified", "Qualifiziert") in options
        connector.preflight()
        assert connector.setup().created == ()
    finally:
        sb.stop()
