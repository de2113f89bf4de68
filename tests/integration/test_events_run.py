"""EVENTS runs against the sandbox, for both CRMs: the deals CRM events marked dirty are re-read with batch
calls (HubSpot `batch/read` of 100 ids, Salesforce one `Id IN (...)` query per 200 ids), assessed and
written like any run, and their marks cleared; a deal marked again while the run went stays dirty; a
closed dirty deal is dropped and its task completed, as a DEAL-mode run does."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.model import Page
from connectors.salesforce.connector import SalesforceConnector
from tests.integration.conftest import Env
from worker.serve.scheduler import build_coalescer, event_connections, run_events
from worker.state import InboundEvent, LeaseHeldError
from worker.state.model import RunMode, Trigger
from worker.sync.run_model import RunRequest, RunSummary

UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}
_events = iter(range(1, 1_000_000))


def mark(env: Env, deal_ids: Sequence[str]) -> None:
    """Record one change event per deal (as the webhook endpoint does), at the worker's now."""
    now = env.time.now()
    events = [
        InboundEvent(f"ev-{next(_events)}", deal_id, now - timedelta(seconds=1)) for deal_id in deal_ids
    ]
    tally = env.worker.store.record_events(env.crm, events, now)
    assert tally.marked == len(set(deal_ids))


def deal_reads(env: Env) -> list[dict[str, Any]]:
    """The requests that read deals: HubSpot searches, lists and batch reads of deals; Salesforce queries
    of Opportunity."""
    found = []
    for r in env.sb.requests():
        path = str(r["path"])
        if env.crm == "hubspot":
            if path.startswith("/crm/v3/objects/deals") and (
                r["method"] == "GET" or path.endswith(("/search", "/batch/read"))
            ):
                found.append(r)
        elif "FROM Opportunity" in str((r.get("query") or {}).get("q", "")):
            found.append(r)
    return found


def batch_calls(env: Env, requests: list[dict[str, Any]]) -> int:
    if env.crm == "hubspot":
        return sum(1 for r in requests if str(r["path"]).endswith("/deals/batch/read"))
    return sum(1 for r in requests if " IN (" in str((r.get("query") or {}).get("q", "")))


def _close(env: Env, deal_id: str) -> None:
    if env.crm == "salesforce":
        env.sb.salesforce.update("Opportunity", deal_id, {"StageName": "Closed Lost"})
    else:
        env.sb.hubspot.update_deal(deal_id, {"dealstage": "closedlost"})


def events_run(env: Env) -> RunSummary:
    summary = env.run("events", trigger="event")
    assert summary.status == "succeeded", summary.error
    return summary


def test_an_events_run_rereads_exactly_the_dirty_deals_in_batches_and_clears_them(env: Env) -> None:
    """Every deal of the account (open and closed) is marked: the run reads them with ceil(N/100) HubSpot
    batch reads or ceil(N/200) Salesforce queries and nothing else, writes what changed (the edited deals
    qualify and their tasks are completed), never moves the cursor, and clears every mark."""
    assert env.run("full").status == "succeeded"
    store = env.worker.store
    cursor = store.get_cursor(env.crm)
    deals = env.view.deals()
    flagged = sorted(i for i, d in deals.items() if d["open"] and d["status"] in UNQUALIFIED)[:3]
    for deal_id in flagged:
        env.view.fix_bant(deal_id)
    everything = sorted(deals)
    mark(env, everything)
    assert len(store.dirty_deals(env.crm, 10_000)) == len(everything) > 200
    env.sb.reset_requests()
    summary = events_run(env)
    reads = deal_reads(env)
    per_call = 100 if env.crm == "hubspot" else 200
    assert batch_calls(env, reads) == len(reads) == math.ceil(len(everything) / per_call)
    open_count = sum(1 for d in deals.values() if d["open"])
    assert summary.deals["read"] == open_count
    assert summary.deals["written"] == len(flagged)
    after = env.view.deals()
    assert all(after[deal_id]["status"] == "qualified" for deal_id in flagged)
    for deal_id in flagged:
        assert [t["open"] for t in env.view.tasks_of(deal_id)] == [False]
    assert store.dirty_deals(env.crm, 10_000) == []
    assert store.get_cursor(env.crm) == cursor
    [record] = store.list_runs(env.crm, limit=1)
    assert (record.mode, record.trigger) == ("events", "event")


def test_an_events_run_with_no_dirty_deal_reads_nothing(env: Env) -> None:
    assert env.run("full").status == "succeeded"
    env.sb.reset_requests()
    summary = events_run(env)
    assert deal_reads(env) == [] and summary.deals.get("read", 0) == 0


def test_a_deal_marked_again_during_the_run_stays_dirty(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event arriving while the run reads is not lost: its mark is newer than the run's start, so only
    the marks the run had re-assessed are cleared."""
    assert env.run("full").status == "succeeded"
    open_ids = sorted(i for i, d in env.view.deals().items() if d["open"])[:5]
    mark(env, open_ids)
    cls: Any = HubSpotConnector if env.crm == "hubspot" else SalesforceConnector
    original = cls.fetch_many

    def fetch_many(self: Any, deal_ids: Sequence[str]) -> Iterator[Page]:
        for page in original(self, deal_ids):
            env.time.sleep(1)
            mark(env, [open_ids[2]])
            yield page

    monkeypatch.setattr(cls, "fetch_many", fetch_many)
    summary = events_run(env)
    assert summary.deals["read"] == 5
    assert env.worker.store.dirty_deals(env.crm, 100) == [open_ids[2]]
    monkeypatch.setattr(cls, "fetch_many", original)
    events_run(env)
    assert env.worker.store.dirty_deals(env.crm, 100) == []


def test_a_closed_dirty_deal_is_dropped_and_its_task_completed(env: Env) -> None:
    """A flagged deal that closed is absent from the batch read: its open task is completed, it leaves the
    status counts, and its mark is cleared; the open dirty deal next to it is assessed as usual."""
    assert env.run("full").status == "succeeded"
    store = env.worker.store
    flagged = sorted(i for i, d in env.view.deals().items() if d["open"] and d["status"] == "poc_unqualified")
    closing, staying = flagged[0], flagged[1]
    assert [t["open"] for t in env.view.tasks_of(closing)] == [True]
    before = store.status_counts(env.crm)
    _close(env, closing)
    mark(env, [closing, staying])
    summary = events_run(env)
    assert summary.deals["read"] == 1
    assert summary.tasks["completed"] == 1
    assert [t["open"] for t in env.view.tasks_of(closing)] == [False]
    assert [t["open"] for t in env.view.tasks_of(staying)] == [True]
    assert store.status_counts(env.crm) == {**before, "poc_unqualified": before["poc_unqualified"] - 1}
    assert store.dirty_deals(env.crm, 100) == []
    again = events_run(env)
    assert again.deals.get("read", 0) == 0 and again.tasks.get("completed", 0) == 0


def test_a_dry_events_run_writes_nothing_and_keeps_the_marks(env: Env) -> None:
    assert env.run("full").status == "succeeded"
    flagged = sorted(i for i, d in env.view.deals().items() if d["open"] and d["status"] in UNQUALIFIED)[:2]
    for deal_id in flagged:
        env.view.fix_bant(deal_id)
    mark(env, flagged)
    env.sb.reset_requests()
    summary = env.run("events", dry_run=True, trigger="event")
    assert summary.status == "succeeded", summary.error
    assert env.writes() == 0
    assert sorted(env.worker.store.dirty_deals(env.crm, 100)) == flagged


class Timers:
    """A hand-driven monotonic clock and timer factory for the coalescer."""

    def __init__(self) -> None:
        self.now = 0.0
        self.armed: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def timer(self, delay: float, callback: Callable[[], None]) -> Timers:
        self.armed.append((self.now + delay, callback))
        return self

    def cancel(self) -> None:
        self.armed.clear()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while due := [t for t in self.armed if t[0] <= self.now]:
            self.armed.remove(due[0])
            due[0][1]()


def test_serve_wires_a_coalescer_only_for_connections_with_events_on(env: Env) -> None:
    """With HubSpot `webhooks = true` the service's coalescer runs EVENTS runs for the connection, each
    window after its own `event_debounce_seconds`, and drains marks an earlier process left; a Salesforce
    connection without `change_events = true` has no event source, so the coalescer leaves it alone."""
    text = env.config.read_text(encoding="utf-8")
    text = text.replace(
        'crm = "hubspot"\n',
        'crm = "hubspot"\nwebhooks = true\napp_id = "4242"\nevent_debounce_seconds = 1.5\n',
    )
    text = text.replace('crm = "salesforce"\n', 'crm = "salesforce"\nevent_debounce_seconds = 1.5\n')
    env.config.write_text(text, encoding="utf-8")
    env.restart()
    assert env.run("full").status == "succeeded"
    flagged = sorted(i for i, d in env.view.deals().items() if d["open"] and d["status"] in UNQUALIFIED)[:2]
    env.view.fix_bant(flagged[0])
    mark(env, flagged)
    timers = Timers()
    coalescer = build_coalescer(env.worker, clock=timers.clock, timer_factory=timers.timer)
    assert [conn.name for conn in event_connections(env.worker)] == ["hubspot"]
    assert coalescer is not None and coalescer.window("hubspot") == (1.5, 10.0)
    if env.crm == "salesforce":
        assert coalescer.pending() == [], "the Salesforce connection's marks wait: its change_events is off"
        coalescer.close()
        return
    assert coalescer.pending() == ["hubspot"], "marks left by an earlier process are drained at start"
    timers.advance(1.0)
    assert env.worker.store.dirty_deals("hubspot", 10) == flagged
    timers.advance(0.5)
    assert env.worker.store.dirty_deals("hubspot", 10) == []
    assert env.view.deals()[flagged[0]]["status"] == "qualified"
    [record] = env.worker.store.list_runs("hubspot", limit=1)
    assert (record.mode, record.trigger, record.status) == ("events", "event", "succeeded")
    coalescer.close()


def test_an_event_run_on_a_busy_connection_raises_lease_held(env: Env) -> None:
    """run_events takes the connection's lease like any run: while another run holds it, LeaseHeldError
    (the coalescer then tries again one window later) and the marks stay."""
    assert env.run("full").status == "succeeded"
    deal_id = sorted(i for i, d in env.view.deals().items() if d["open"])[0]
    mark(env, [deal_id])
    lease = env.worker.reserve(env.crm)
    try:
        with pytest.raises(LeaseHeldError):
            run_events(env.worker, env.crm)
    finally:
        env.worker.store.release_lease(lease)
    assert env.worker.store.dirty_deals(env.crm, 10) == [deal_id]
    summary = run_events(env.worker, env.crm)
    assert summary is not None and summary.status == "succeeded"
    assert env.worker.store.dirty_deals(env.crm, 10) == []


def test_marks_made_after_the_run_listed_its_deals_stay_and_an_idle_window_starts_no_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mark made between the run's start and the moment it lists the dirty deals is read by this run and
    cleared with the rest (the edit behind it came before the read); one made after the listing stays for
    the next run. When nothing is dirty any more, run_events starts no run at all."""
    assert env.run("full").status == "succeeded"
    first, late = sorted(i for i, d in env.view.deals().items() if d["open"])[:2]
    mark(env, [first])
    store = env.worker.store
    real_dirty, real_rehome = type(store).dirty_deals, type(store).rehome_ledger
    calls: list[int] = []

    def mark_before_the_listing(self: object, connection: str, identity: str) -> int:
        env.time.sleep(1)
        mark(env, [first])
        env.time.sleep(1)
        return real_rehome(store, connection, identity)

    def list_then_mark(self: object, connection: str, limit: int) -> list[str]:
        if calls or limit == 1:  # a check whether anything is dirty, not the listing
            return real_dirty(store, connection, limit)
        calls.append(limit)
        listed = real_dirty(store, connection, limit)
        env.time.sleep(1)
        mark(env, [late])
        return listed

    env.time.sleep(1)
    monkeypatch.setattr(type(store), "rehome_ledger", mark_before_the_listing)
    monkeypatch.setattr(type(store), "dirty_deals", list_then_mark)
    summary = env.worker.run(RunRequest(env.crm, mode=RunMode.EVENTS, trigger=Trigger.EVENT))
    monkeypatch.setattr(type(store), "dirty_deals", real_dirty)
    monkeypatch.setattr(type(store), "rehome_ledger", real_rehome)
    assert summary.status == "succeeded", summary.error
    assert store.dirty_deals(env.crm, 10) == [late]
    assert run_events(env.worker, env.crm) is not None
    assert store.dirty_deals(env.crm, 10) == []
    env.sb.reset_requests()
    assert run_events(env.worker, env.crm) is None
    assert env.sb.requests() == []


def test_an_event_run_that_finds_nothing_dirty_any_more_makes_no_crm_call(env: Env) -> None:
    """The coalescer saw a dirty deal, but the run before took it: the run it starts (lease taken) ends at
    once, succeeded, without its preflight reads."""
    assert env.run("full").status == "succeeded"
    env.sb.reset_requests()
    summary = env.worker.run(RunRequest(env.crm, mode=RunMode.EVENTS, trigger=Trigger.EVENT))
    assert (summary.status, summary.api_calls) == ("succeeded", 0)
    assert env.sb.requests() == []
    record = env.worker.store.get_run(summary.run_id)
    assert record is not None and record.status == "succeeded"
