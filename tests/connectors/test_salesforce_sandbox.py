"""The Salesforce connector against the sandbox: the contract suite, paging, ties, reruns and faults."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

import pytest

from connectors.contract import ConnectorContract
from connectors.errors import QuotaExhaustedError, SchemaDriftError
from connectors.model import OutcomeKind, WriteTarget
from connectors.task_keys import legacy_sync_key, sync_key
from sandbox import FaultRule, Sandbox, SandboxOptions
from sandbox.salesforce.schema import FieldDef
from tests.connectors.sf_sandbox_support import Progress, SfSandboxEnv, sync, written
from worker.state import LedgerEntry


def start(**options: object) -> Sandbox:
    defaults: dict[str, object] = {"seed": "track-selling", "enforce_rate_limits": False}
    defaults.update(options)
    return Sandbox.start(SandboxOptions(**defaults))  # type: ignore[arg-type]


@pytest.fixture
def sfenv() -> Iterator[SfSandboxEnv]:
    with start() as sb:
        yield SfSandboxEnv(sb)


class TestSalesforceContract(ConnectorContract):
    @pytest.fixture
    def connector_env(self, sfenv: SfSandboxEnv) -> SfSandboxEnv:
        return sfenv


def test_paging_over_10000_opportunities_uses_one_call_per_2000() -> None:
    """A full sweep over 10,000+ opportunities sees each open one once in ceil(N/2000) query calls."""
    with start(deals=10_000) as sb:
        env = SfSandboxEnv(sb)
        connector = env.connector()
        connector.preflight()
        pages = list(connector.fetch_changed(None, full=True))
        ids = [d.id for p in pages for d in p.deals]
        open_count = env.open_deal_count()
        assert open_count >= 10_000
        assert len(ids) == len(set(ids)) == open_count
        assert env.query_calls() == math.ceil(open_count / 2000)
        assert all(len(p.deals) <= 2000 for p in pages)


def test_ties_at_a_page_boundary_are_neither_skipped_nor_repeated() -> None:
    """300 deals sharing one SystemModstamp across a 200-record page boundary: resuming from the first
    page's cursor (strict (stamp, Id) mode) reads exactly the other 100."""
    with start(deals=400) as sb:
        _check_ties(SfSandboxEnv(sb))


def _check_ties(sfenv: SfSandboxEnv) -> None:
    sb = sfenv.sb
    first = sfenv.connector(overlap_minutes=0, query_batch_size=200)
    first.preflight()
    start_cursor = list(first.fetch_changed(None, full=True))[-1].cursor
    sfenv.advance(60)
    sb.clock.freeze()
    targets = [o["Id"] for o in sb.salesforce.records("Opportunity") if not o["IsClosed"]]
    if len(targets) < 300:
        pytest.fail(f"the seed holds only {len(targets)} open opportunities; the test needs 300")
    targets = targets[:300]
    for deal_id in targets:
        sb.salesforce.update("Opportunity", deal_id, {"BANT_Budget__c": "USD 10k"})
    stamps = {sb.salesforce.get("Opportunity", d)["SystemModstamp"] for d in targets}
    assert len(stamps) == 1
    page_one = next(iter(first.fetch_changed(start_cursor)))
    assert len(page_one.deals) == 200
    resumed = sfenv.connector(overlap_minutes=0, query_batch_size=200)
    resumed.preflight()
    rest = [d.id for p in resumed.fetch_changed(page_one.cursor) for d in p.deals]
    seen = [d.id for d in page_one.deals] + rest
    assert len(rest) == 100
    assert sorted(seen) == sorted(targets)


def test_rerun_with_no_changes_makes_zero_writes(sfenv: SfSandboxEnv) -> None:
    """After a full run, a rerun from its cursor writes nothing; a third run reads one page at most."""
    cursor, outcomes = sync(sfenv, sfenv.connector(), full=True)
    assert written(outcomes) > 0
    for _ in range(2):
        before_writes, before_queries = sfenv.write_calls(), sfenv.query_calls()
        cursor, outcomes = sync(sfenv, sfenv.connector(), cursor)
        assert outcomes == []
        assert sfenv.write_calls() == before_writes
    assert sfenv.query_calls() - before_queries <= 2


def test_partial_batch_failures_are_per_row_and_retried_next_run(sfenv: SfSandboxEnv) -> None:
    """Rows 1 and 3 of the status batch fail with the CRM's message; the rest are written; the next run
    writes the two that failed."""
    sfenv.sb.add_fault(
        FaultRule(
            kind="partial_batch",
            crm="salesforce",
            method="PATCH",
            path=r"/composite/sobjects$",
            times=1,
            rows=(1, 3),
            error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
            message="Close Date must be in the future",
        )
    )
    _cursor, outcomes = sync(sfenv, sfenv.connector(), full=True)
    rejected = [o for o in outcomes if o.kind is OutcomeKind.REJECTED]
    assert [(o.target, o.code, o.message) for o in rejected] == [
        (WriteTarget.STATUS, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Close Date must be in the future")
    ] * 2
    _, again = sync(sfenv, sfenv.connector(), full=True)
    status_written = {
        o.deal_id for o in again if o.target is WriteTarget.STATUS and o.kind is OutcomeKind.WRITTEN
    }
    assert status_written == {o.deal_id for o in rejected}


def test_locked_rows_are_retried_alone_and_written(sfenv: SfSandboxEnv) -> None:
    """Two opportunities locked for the next 2 attempts are re-sent alone and end written."""
    open_ids = [o["Id"] for o in sfenv.sb.salesforce.records("Opportunity") if not o["IsClosed"]][:2]
    sfenv.sb.add_fault(FaultRule(kind="locked_rows", crm="salesforce", ids=tuple(open_ids), attempts=2))
    _, outcomes = sync(sfenv, sfenv.connector(), full=True)
    by_deal = {o.deal_id: o for o in outcomes if o.target is WriteTarget.STATUS}
    assert all(by_deal[d].kind is OutcomeKind.WRITTEN for d in open_ids if d in by_deal)
    assert any(d in by_deal for d in open_ids)
    assert len(sfenv.sleeps) >= 2


def test_session_expiry_mid_run_reauthenticates_and_finishes(sfenv: SfSandboxEnv) -> None:
    """Tokens expire after 3 calls: the JWT connector logs in again once and the run completes."""
    sfenv.sb.add_fault(FaultRule(kind="session_expiry", crm="salesforce", after_calls=3))
    connector = sfenv.jwt_connector()
    _, outcomes = sync(sfenv, connector, full=True)
    assert written(outcomes) > 0
    assert connector.client.authenticator.logins == 2
    assert all(o.kind is OutcomeKind.WRITTEN for o in outcomes)


def test_quota_stop_then_resume_from_the_cursor() -> None:
    """With a tiny allocation the run stops cleanly before the configured share and a later run resumes
    from the saved cursor; together they assess every deal once and write each status once."""
    with start(deals=3000, salesforce_daily_api_limit=120) as sb:
        env = SfSandboxEnv(sb, query_batch_size=200)
        progress = Progress()
        with pytest.raises(QuotaExhaustedError) as caught:
            sync(env, env.connector(quota_stop_share=0.25), full=True, progress=progress)
        cursor, outcomes = progress.cursor, progress.outcomes
        assert caught.value.used == 30
        assert outcomes
        assert cursor is not None
        _, rest = sync(env, env.connector(quota_stop_share=1.0), cursor)
        statuses = Counter(o.deal_id for o in outcomes + rest if o.target is WriteTarget.STATUS)
        assert statuses and max(statuses.values()) == 1


def test_commit_then_drop_on_task_upsert_never_duplicates(sfenv: SfSandboxEnv) -> None:
    """The first task upsert is applied and its connection dropped: the retry updates, one task per deal."""
    sfenv.sb.add_fault(
        FaultRule(
            kind="commit_then_drop",
            crm="salesforce",
            method="PATCH",
            path=r"/composite/sobjects/Task/",
            times=1,
        )
    )
    _, outcomes = sync(sfenv, sfenv.connector(), full=True)
    tasks = [o for o in outcomes if o.target is WriteTarget.TASK]
    assert tasks and all(o.kind is OutcomeKind.WRITTEN for o in tasks)
    keys = Counter(
        t["BANT_Sync_Key__c"] for t in sfenv.sb.salesforce.records("Task") if t.get("BANT_Sync_Key__c")
    )
    assert keys and max(keys.values()) == 1
    assert len(keys) == len(tasks)


QUALIFIED = {
    "budget": "USD 85,000 approved",
    "authority": "Dana Reyes, CFO",
    "need": "Replace three nightly ETL jobs",
    "timing": "Decision in Q3",
}


def test_identity_is_the_org_id_and_keys_the_tasks(sfenv: SfSandboxEnv) -> None:
    """identity is `salesforce:` and the org's 15-character id, the same in every run; each task a run
    creates is keyed from it and its deal."""
    (org,) = sfenv.sb.salesforce.records("Organization")
    first, second = sfenv.connector(), sfenv.connector()
    assert first.identity == second.identity == f"salesforce:{org['Id'][:15]}"
    sync(sfenv, first, full=True)
    tasks = sfenv.bant_tasks()
    assert tasks
    assert all(t["BANT_Sync_Key__c"] == sync_key(first.identity, t["WhatId"]) for t in tasks)


def test_without_an_external_id_a_lost_create_is_found_next_run_even_after_the_deal_qualified() -> None:
    """Key field without the External ID attribute: the create POST is applied but its answer lost, so its
    tasks are UNCERTAIN and stay `intended` in the ledger. The next run finds them by key: nothing is
    created again, and the task of a deal that qualified in between is completed."""
    with start() as sb:
        sb.salesforce.add_field(
            "Task", FieldDef("BANT_Plain_Key__c", "BANT Plain Key", "string", length=255, unique=True)
        )
        env = SfSandboxEnv(sb, task_key_field="BANT_Plain_Key__c")
        sb.add_fault(
            FaultRule(
                kind="commit_then_drop",
                crm="salesforce",
                method="POST",
                path=r"/composite/sobjects$",
                times=1,
            )
        )
        _, first = sync(env, env.connector(), full=True)
        lost = {o.sync_key: o.deal_id for o in first if o.code == "UNCERTAIN"}
        assert lost and all(o.kind is OutcomeKind.REJECTED for o in first if o.code == "UNCERTAIN")
        assert {e.state for e in env.ledger.lookup(lost).values()} == {"intended"}
        qualified = sorted(lost.values())[0]
        for name, value in QUALIFIED.items():
            env.edit_deal(qualified, name, value)
        env.advance(60)
        posts = sum(1 for r in env.requests() if r["method"] == "POST")
        _, second = sync(env, env.connector(), full=True)
        assert sum(1 for r in env.requests() if r["method"] == "POST") == posts
        keys = Counter(t["BANT_Plain_Key__c"] for t in env.bant_tasks())
        assert max(keys.values()) == 1 and set(lost) <= set(keys)
        closed = {t["WhatId"] for t in env.bant_tasks() if t["IsClosed"]}
        assert closed == {qualified}
        entries = env.ledger.lookup(lost)
        assert all(e.task_id for e in entries.values())
        assert {k: e.state for k, e in entries.items()} == {
            k: "completed" if d == qualified else "open" for k, d in lost.items()
        }
        done = [o for o in second if o.target is WriteTarget.TASK]
        assert [(o.deal_id, o.kind) for o in done] == [(qualified, OutcomeKind.WRITTEN)]


def test_a_task_under_a_pre_0_2_key_is_rekeyed_not_duplicated(sfenv: SfSandboxEnv) -> None:
    """A task the ledger knows under its pre-0.2 key (hashed from the connection name) is adopted: the next
    run writes the new key onto that same task, and the ledger forgets the old key."""
    sync(sfenv, sfenv.connector(), full=True)
    task = sfenv.bant_tasks()[0]
    deal_id, task_id, key = task["WhatId"], task["Id"], task["BANT_Sync_Key__c"]
    legacy = legacy_sync_key("sandbox", deal_id)
    sfenv.sb.salesforce.update("Task", task_id, {"BANT_Sync_Key__c": legacy})
    entry = sfenv.ledger.lookup([key])[key]
    sfenv.ledger.forget([key])
    sfenv.ledger.record([LedgerEntry(legacy, deal_id, task_id, "open", entry.missing, None)])
    _, outcomes = sync(sfenv, sfenv.connector(), full=True)
    assert [(o.deal_id, o.kind, o.task_id) for o in outcomes if o.target is WriteTarget.TASK] == [
        (deal_id, OutcomeKind.WRITTEN, task_id)
    ]
    mine = [t for t in sfenv.bant_tasks() if t["WhatId"] == deal_id]
    assert [(t["Id"], t["BANT_Sync_Key__c"]) for t in mine] == [(task_id, key)]
    assert sfenv.ledger.lookup([legacy]) == {}
    assert (sfenv.ledger.lookup([key])[key].task_id, sfenv.ledger.lookup([key])[key].state) == (
        task_id,
        "open",
    )


def test_field_deleted_between_runs_stops_without_flagging(sfenv: SfSandboxEnv) -> None:
    """Deleting BANT_Budget__c after a run makes the next preflight name it; nothing is written."""
    cursor, _ = sync(sfenv, sfenv.connector(), full=True)
    sfenv.sb.salesforce.delete_field("Opportunity", "BANT_Budget__c")
    before = sfenv.write_calls()
    with pytest.raises(SchemaDriftError) as caught:
        sync(sfenv, sfenv.connector(), cursor, full=True)
    assert "Opportunity.BANT_Budget__c" in caught.value.fields
    assert "BANT_Budget__c" in str(caught.value)
    assert sfenv.write_calls() == before


def test_field_deleted_between_query_pages_stops_before_the_next_page() -> None:
    """BANT_Budget__c deleted after the first 200-record page: the next page (nextRecordsUrl) lacks it, and
    the stream raises SchemaDriftError naming it instead of handing on a page of empty budgets."""
    with start(deals=500) as sb:
        env = SfSandboxEnv(sb)
        connector = env.connector(query_batch_size=200)
        connector.preflight()
        pages = connector.fetch_changed(None, full=True)
        first = next(pages)
        assert len(first.deals) == 200
        sb.salesforce.delete_field("Opportunity", "BANT_Budget__c")
        with pytest.raises(SchemaDriftError) as caught:
            next(pages)
    assert caught.value.fields == ("Opportunity.BANT_Budget__c",)
    assert "BANT_Budget__c (budget)" in str(caught.value) and "bant-sync setup --check" in str(caught.value)


def test_fetch_one_after_a_field_vanished_is_drift(sfenv: SfSandboxEnv) -> None:
    """A single-deal read after the field vanished mid-run fails naming it (its query is INVALID_FIELD)."""
    connector = sfenv.connector()
    connector.preflight()
    deal_id = next(o["Id"] for o in sfenv.sb.salesforce.records("Opportunity") if not o["IsClosed"])
    sfenv.sb.salesforce.delete_field("Opportunity", "BANT_Need__c")
    with pytest.raises(SchemaDriftError) as caught:
        connector.fetch_one(deal_id)
    assert "BANT_Need__c" in str(caught.value)


def test_configured_field_names_are_read_in_describe_spelling(sfenv: SfSandboxEnv) -> None:
    """`fields` naming a field in other letter case (SOQL does not care) reads the values Salesforce sends
    under the describe spelling, instead of reading nothing and flagging every deal."""
    plain = sfenv.connector()
    plain.preflight()
    lowered = sfenv.connector(fields={"budget": "bant_budget__c", "need": "BANT_NEED__C"})
    lowered.preflight()
    expected = {(d.id, d.budget, d.need) for p in plain.fetch_changed(None, full=True) for d in p.deals}
    got = {(d.id, d.budget, d.need) for p in lowered.fetch_changed(None, full=True) for d in p.deals}
    assert got == expected
    assert any(budget for _id, budget, _need in got)
