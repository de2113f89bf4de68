"""The audit log misses nothing (issue item 5): every status that reaches the CRM is audited, also when its
run died before the checkpoint (the next run audits what it finds, source "observed"), and a run that
fails or stops for quota part-way counts, audits and checkpoints exactly the status writes that landed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import SandboxOptions
from sandbox.faults import FaultRule
from tests.integration.conftest import Env, sandbox_env
from worker.state import AuditRow, StateStore


class Killed(Exception):
    """Stands for the process dying at its first checkpoint."""


def _shown(env: Env) -> dict[str, str]:
    """The bant-sync status each open deal shows in the CRM (deals without one left out)."""
    return {i: d["status"] for i, d in env.view.deals().items() if d["open"] and d["status"] is not None}


def _latest(store: StateStore, connection: str) -> dict[str, AuditRow]:
    """Each deal's latest audit row."""
    latest: dict[str, AuditRow] = {}
    for row in store.audit(connection, limit=1_000_000):
        latest.setdefault(row.deal_id, row)
    return latest


def _audit_matches_crm(env: Env) -> None:
    latest = _latest(env.worker.store, env.crm)
    shown = _shown(env)
    wrong = {d: (latest[d].new_status if d in latest else None, s) for d, s in shown.items()}
    wrong = {d: pair for d, pair in wrong.items() if pair[0] != pair[1]}
    assert not wrong, (
        f"{len(wrong)} deals' last audited status is not what the CRM shows: {list(wrong.items())[:5]}"
    )


def test_writes_of_a_run_killed_before_its_checkpoint_are_audited_next_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose status writes landed but which died before any checkpoint leaves no audit row; the next
    run audits each status it finds (source "observed", dated when it was written), and the one after adds
    nothing."""
    started = env.time.now()

    def killed(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(env.worker.store, "checkpoint", killed)
    with pytest.raises(Killed):
        env.run("full")
    monkeypatch.undo()
    stopped = env.time.now()
    assert env.worker.store.audit(env.crm) == []
    shown = _shown(env)
    assert shown

    summary = env.run()
    assert summary.status == "succeeded", summary.error
    _audit_matches_crm(env)
    observed = [r for r in env.worker.store.audit(env.crm, limit=10_000) if r.source == "observed"]
    assert {r.deal_id: r.new_status for r in observed} == shown
    assert all(r.old_status is None and r.run_id == summary.run_id for r in observed)
    assert all(started.replace(microsecond=0) <= r.at <= stopped for r in observed)

    count = len(env.worker.store.audit(env.crm, limit=10_000))
    assert env.run("full").status == "succeeded"
    assert len(env.worker.store.audit(env.crm, limit=10_000)) == count


def test_a_status_edited_in_the_crm_is_audited_before_it_is_written_back(env: Env) -> None:
    """Someone sets a flagged deal's status field to qualified in the CRM: the next run audits that change
    (observed) and then its own write putting the status back, in that order."""
    env.run("full")
    deal_id, status = next((i, s) for i, s in _shown(env).items() if s == "poc_unqualified")
    if env.crm == "salesforce":
        env.sb.salesforce.update("Opportunity", deal_id, {"BANT_Status__c": "qualified"})
    else:
        env.sb.hubspot.update_deal(deal_id, {"bant_status": "qualified"})
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    rows = env.worker.store.audit(env.crm, deal_id=deal_id, limit=3)
    assert [(r.old_status, r.new_status, r.source) for r in rows[:2]] == [
        ("qualified", status, "run"),
        (status, "qualified", "observed"),
    ]
    _audit_matches_crm(env)


@pytest.fixture(params=["salesforce", "hubspot"])
def big_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """Like `env`, with 600 synthetic deals: a page's status writes then span several batch calls."""
    options = SandboxOptions(deals=600, seed_value=11, enforce_rate_limits=False)
    with sandbox_env(str(request.param), tmp_path, options) as env:
        yield env


def _fail_second_status_call(env: Env) -> str:
    """Salesforce: the org's daily allocation runs out at the second status batch (quota stop). HubSpot:
    from the second status batch on every call is a 429 until retries run out (the run fails)."""
    if env.crm == "salesforce":
        env.sb.add_fault(
            FaultRule(
                kind="error_code",
                crm="salesforce",
                method="PATCH",
                path=r"/composite/sobjects$",
                nth=2,
                error_code="REQUEST_LIMIT_EXCEEDED",
                message="TotalRequests Limit exceeded.",
            )
        )
        return "quota_stopped"
    env.sb.add_fault(
        FaultRule(
            kind="status",
            crm="hubspot",
            path=r"/deals/batch/update$",
            nth=2,
            times=10_000,
            status=429,
            headers={"Retry-After": "1"},
        )
    )
    return "failed"


def test_a_run_failing_part_way_reports_exactly_the_status_writes_that_landed(big_env: Env) -> None:
    """When a status batch call fails after others landed, the run's counts, its audit rows and the deal
    states hold exactly the statuses the CRM now shows; the cursor does not move; the rerun finds nothing
    unaudited."""
    env = big_env
    expected_status = _fail_second_status_call(env)
    summary = env.run("full")
    assert summary.status == expected_status, summary.error
    store = env.worker.store
    shown = _shown(env)
    open_deals = [i for i, d in env.view.deals().items() if d["open"]]
    assert 0 < len(shown) < len(open_deals)
    assert summary.deals["written"] == len(shown)
    record = store.get_run(summary.run_id)
    assert record is not None and record.counts["deals_written"] == len(shown)
    audited = store.audit(env.crm, limit=10_000)
    assert {r.deal_id: r.new_status for r in audited} == shown
    assert len(audited) == len(shown) and {(r.run_id, r.source) for r in audited} == {(summary.run_id, "run")}
    states = store.deal_states_for(env.crm, open_deals)
    assert {d: s.status for d, s in states.items()} == shown
    assert store.get_cursor(env.crm) is None

    env.sb.clear_faults()
    again = env.run()
    assert again.status == "succeeded", again.error
    assert [r for r in store.audit(env.crm, limit=10_000) if r.source == "observed"] == []
    _audit_matches_crm(env)
