"""Whole sync runs against the sandbox, for both CRMs: flags, tasks, reruns, fixes, dry runs, the lease."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.integration.conftest import Env
from worker.service import utc_now
from worker.state import LeaseHeldError

UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}


def test_first_run_flags_exactly_the_unqualified_and_creates_one_task_each(env: Env) -> None:
    """The track-selling story: the 65 POCs missing BANT are flagged, the 20 qualified ones are not,
    and every unqualified open deal gets exactly one open task."""
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    deals = env.view.deals()
    open_deals = {i: d for i, d in deals.items() if d["open"]}
    pocs = [d for d in open_deals.values() if (d["type"] or "").lower() == "poc"]
    assert len(pocs) == 85
    assert Counter(d["status"] in UNQUALIFIED for d in pocs) == {True: 65, False: 20}
    assert all(d["status"] in {"poc_unqualified", "qualify_out"} for d in pocs if d["status"] in UNQUALIFIED)
    unqualified = {i for i, d in open_deals.items() if d["status"] in UNQUALIFIED}
    tasks = env.view.tasks()
    assert Counter(t["deal_id"] for t in tasks if t["open"]) == dict.fromkeys(unqualified, 1)
    assert summary.tasks["created"] == len(unqualified)
    assert summary.deals["written"] == len(open_deals)
    assert all(d["status"] is None for d in deals.values() if not d["open"])


def test_unchanged_rerun_writes_nothing(env: Env) -> None:
    """A second run finds nothing to change: zero writes to the CRM, zero tasks created. The incremental run
    right after the first reads back the deals the first wrote but, finding each as it was judged, looks up
    no task; an unchanged full sweep, the reconciliation pass, reads each deal's task from the CRM."""
    env.run("full")
    env.sb.reset_requests()
    again = env.run()
    assert again.status == "succeeded", again.error
    assert again.deals.get("written", 0) == 0
    assert again.deals["already_judged"] == again.deals["read"] > 0
    assert again.tasks["checked"] == 0
    assert env.writes() == 0
    sweep = env.run("full")
    assert sweep.status == "succeeded", sweep.error
    assert sweep.deals.get("written", 0) == 0 and sweep.deals.get("already_judged", 0) == 0
    assert {k: v for k, v in sweep.tasks.items() if k != "checked" and v} == {}
    with_task = {t["deal_id"] for t in env.view.tasks()}
    assert sweep.tasks["checked"] == len(with_task), "each deal's task is read from the CRM, nothing else"
    assert env.writes() == 0


def test_fixing_bant_clears_the_status_and_completes_the_task(env: Env) -> None:
    """When a rep fills in BANT, the next run marks the deal qualified and completes its task."""
    env.run("full")
    deal_id = next(i for i, d in env.view.deals().items() if d["open"] and d["status"] == "poc_unqualified")
    env.view.fix_bant(deal_id)
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    assert env.view.deals()[deal_id]["status"] == "qualified"
    assert [t["open"] for t in env.view.tasks() if t["deal_id"] == deal_id] == [False]
    assert summary.tasks["completed"] == 1


def _close(env: Env, deal_id: str) -> None:
    if env.crm == "salesforce":
        env.sb.salesforce.update("Opportunity", deal_id, {"StageName": "Closed Lost"})
    else:
        env.sb.hubspot.update_deal(deal_id, {"dealstage": "closedlost"})


def test_a_full_sweep_forgets_deals_that_closed(env: Env) -> None:
    """A closed deal drops out of the status counts and owner gauges at the next full sweep (incremental
    runs cannot see it close), and its task is completed then."""
    env.run("full")
    store = env.worker.store
    flagged = next(i for i, d in env.view.deals().items() if d["open"] and d["status"] == "poc_unqualified")
    before = store.status_counts(env.crm)
    _close(env, flagged)
    assert env.run().status == "succeeded"
    assert store.status_counts(env.crm) == before
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    after = store.status_counts(env.crm)
    assert after == {**before, "poc_unqualified": before["poc_unqualified"] - 1}
    assert sum(after.values()) == sum(1 for d in env.view.deals().values() if d["open"])
    assert [t["open"] for t in env.view.tasks() if t["deal_id"] == flagged] == [False]


def test_a_deal_run_forgets_the_deal_once_it_closed(env: Env) -> None:
    """`sync --deal ID` on a deal that closed completes its task and drops it from the counts."""
    env.run("full")
    store = env.worker.store
    flagged = next(i for i, d in env.view.deals().items() if d["open"] and d["status"] == "poc_unqualified")
    before = store.status_counts(env.crm)
    _close(env, flagged)
    assert env.run("deal", deal_id=flagged).status == "succeeded"
    assert store.status_counts(env.crm) == {**before, "poc_unqualified": before["poc_unqualified"] - 1}


def test_dry_run_matches_the_real_run(env: Env) -> None:
    """A dry run writes nothing and predicts the real run's writes one for one."""
    env.sb.reset_requests()
    preview = env.run("full", dry_run=True)
    assert env.writes() == 0
    assert env.view.tasks() == []
    real = env.run("full")
    assert preview.deals["would_write"] == real.deals["written"]
    assert preview.tasks["created"] == real.tasks["created"]
    planned_status = {p["deal_id"]: p["to"] for p in preview.planned if p["kind"] == "status"}
    shown = {i: d["status"] for i, d in env.view.deals().items() if i in planned_status}
    assert planned_status == shown


def test_a_second_trigger_is_told_who_holds_the_lease(env: Env) -> None:
    """While a run holds the connection's lease, another trigger gets LeaseHeldError naming it."""
    lease = env.worker.reserve(env.crm)
    with pytest.raises(LeaseHeldError) as info:
        env.run()
    assert info.value.holder_run_id == lease.run_id
    assert lease.run_id in str(info.value)
    env.worker.store.release_lease(lease)
    assert env.worker.store.lease_holder(env.crm, utc_now()) is None
    assert env.run().status == "succeeded"
