"""Near-real-time on HubSpot, end to end: a rep edits a deal in the sandbox, the sandbox's app delivers the
signed webhook to the ops API (a real uvicorn server), the endpoint records it, and the coalescer (built as
`serve` builds it, on a hand-driven clock and timers) starts one EVENTS run that re-assesses the deal: its
status and task change without any scheduled run. Duplicated, out-of-order, late and echoed events change
nothing twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from sandbox import SandboxOptions
from sandbox.hubspot.webhooks import BANT_INPUTS
from tests.integration.conftest import Env, sandbox_env
from worker.events import EventCoalescer
from worker.serve.ops_api import create_app
from worker.serve.ops_server import server_config
from worker.serve.scheduler import build_coalescer
from worker.state import StateStore
from worker.state.model import RunMode, Trigger

TOKEN = "ops-token-0123456789abcdef0123456789"
UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}
OUTPUTS = ("bant_status", "bant_missing", "bant_score", "bant_checked_at", "bant_reasons")


@dataclass
class _Timer:
    due: float
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class ManualClock:
    """The coalescer's monotonic clock and timers, moved by hand: nothing waits for real seconds."""

    now: float = 1000.0
    timers: list[_Timer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> float:
        return self.now

    def timer(self, delay: float, callback: Callable[[], None]) -> _Timer:
        with self.lock:
            timer = _Timer(self.now + delay, callback)
            self.timers.append(timer)
            return timer

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            with self.lock:
                due = [t for t in self.timers if not t.cancelled and t.due <= target]
                if not due:
                    break
                first = min(due, key=lambda t: t.due)
                self.timers.remove(first)
                self.now = max(self.now, first.due)
            first.callback()
        self.now = target


@dataclass
class Live:
    env: Env
    clock: ManualClock
    coalescer: EventCoalescer
    url: str

    @property
    def store(self) -> StateStore:
        return self.env.worker.store

    def event_runs(self) -> list[str]:
        return [r.run_id for r in self.store.list_runs("hubspot", 100) if r.mode == RunMode.EVENTS]

    def all_runs(self) -> int:
        return len(self.store.list_runs("hubspot", 100))

    def delivered(self) -> None:
        """Wait for the sandbox's deliveries; every one was taken (204)."""
        self.env.sb.hubspot.flush_webhooks()
        statuses = {a.status for a in self.env.sb.hubspot.webhook_attempts()}
        assert statuses <= {204}, statuses


def _enable_webhooks(env: Env) -> None:
    """The ops turn webhooks on for the connection: app id in the config, the app's secret as a secret."""
    info = env.sb.info["hubspot"]
    assert isinstance(info, dict)
    text = env.config.read_text(encoding="utf-8")
    text = text.replace(
        'crm = "hubspot"\n', f'crm = "hubspot"\nwebhooks = true\napp_id = "{info["app_id"]}"\n'
    )
    env.config.write_text(text, encoding="utf-8")
    secrets = env.config.with_name(f"{env.config.stem}.secrets.toml")
    lines = secrets.read_text(encoding="utf-8").replace(
        "[connections.hubspot]\n", f'[connections.hubspot]\nclient_secret = "{info["client_secret"]}"\n'
    )
    secrets.write_text(lines, encoding="utf-8")
    env.restart()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    options = SandboxOptions(seed="track-selling", seed_value=7, enforce_rate_limits=False)
    with sandbox_env("hubspot", tmp_path, options) as env:
        _enable_webhooks(env)
        assert env.run("incremental").status == "succeeded"  # the first run learns the portal
        clock = ManualClock()
        worker = env.worker
        coalescer = build_coalescer(worker, clock=clock, timer_factory=clock.timer)  # as `serve` makes it
        assert coalescer is not None
        app = create_app(worker, TOKEN, 16_384, events=coalescer)
        server = uvicorn.Server(server_config(app, "127.0.0.1", 0))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the ops API did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/webhooks/hubspot/hubspot"
        try:
            yield Live(env, clock, coalescer, url)
        finally:
            coalescer.close(wait=True)
            server.should_exit = True
            thread.join(10)


def _flagged(live: Live, count: int) -> list[str]:
    deals = live.env.view.deals()
    found = sorted(d for d, info in deals.items() if info["open"] and info["status"] in UNQUALIFIED)
    assert len(found) >= count
    return [d for d in found if live.env.view.open_tasks_of(d)][:count]


def test_a_reps_edit_is_reassessed_by_an_event_run_without_a_scheduled_run(live: Live) -> None:
    env = live.env
    env.sb.subscribe_hubspot_webhooks(live.url, retry_delays=(0.0,))
    (deal,) = _flagged(live, 1)
    runs_before = live.all_runs()

    env.view.fix_bant(deal)
    live.delivered()
    assert live.store.dirty_deals("hubspot", 10) == [deal]
    assert live.coalescer.pending() == ["hubspot"]
    assert live.all_runs() == runs_before  # recorded only: nothing ran yet

    debounce, _ = live.coalescer.window("hubspot")
    live.clock.advance(debounce)
    assert live.all_runs() == runs_before + 1
    (run_id,) = live.event_runs()
    record = live.store.get_run(run_id)
    assert record is not None and record.trigger == Trigger.EVENT
    assert env.view.deals()[deal]["status"] == "qualified"
    assert env.view.open_tasks_of(deal) == []
    assert live.store.dirty_deals("hubspot", 10) == []
    counts = live.store.event_counts("hubspot")
    assert counts["received"] == 4  # fix_bant fills budget, authority, need and timing: one event each


def test_duplicated_out_of_order_late_and_echoed_events_change_nothing_twice(live: Live) -> None:
    env = live.env
    env.sb.subscribe_hubspot_webhooks(
        live.url,
        properties=(*BANT_INPUTS, *OUTPUTS),
        batch_size=1,
        retry_delays=(0.0,),
        faults=frozenset({"duplicate", "out_of_order"}),
    )
    first, second = _flagged(live, 2)
    env.sb.webhooks.hold()
    env.view.set_deal_field(first, "budget", "1")  # not enough: still unqualified ...
    env.view.fix_bant(first)  # ... then properly filled in
    env.view.fix_bant(second)
    env.sb.webhooks.release()
    live.delivered()
    counts = live.store.event_counts("hubspot")
    sent = {e for a in env.sb.hubspot.webhook_attempts() for e in a.event_ids}
    assert counts["received"] == 2 * len(sent) and counts["duplicates"] == len(sent)
    assert sorted(live.store.dirty_deals("hubspot", 10)) == sorted([first, second])

    env.sb.reset_requests()
    _, max_delay = live.coalescer.window("hubspot")
    live.clock.advance(max_delay)
    assert len(live.event_runs()) == 1
    for deal in (first, second):
        assert env.view.deals()[deal]["status"] == "qualified"
        assert env.view.open_tasks_of(deal) == []
        assert len(env.view.tasks_of(deal)) == 1
    writes = env.writes()
    assert writes > 0

    # The run's own writes come back as events on the output properties: echoes, recorded, marking nothing.
    live.delivered()
    after_run = live.store.event_counts("hubspot")
    assert after_run["echoes"] > 0
    assert live.store.dirty_deals("hubspot", 10) == []
    assert live.coalescer.pending() == []

    # Every earlier delivery arrives once more, late: all duplicates, nothing re-assessed.
    env.sb.reset_requests()
    env.sb.webhooks.redeliver(env.sb.hubspot.webhook_attempts())
    live.delivered()
    again = live.store.event_counts("hubspot")
    assert again["received"] - after_run["received"] == again["duplicates"] - after_run["duplicates"]
    assert live.store.dirty_deals("hubspot", 10) == []
    assert live.coalescer.pending() == []
    live.clock.advance(60)
    assert len(live.event_runs()) == 1
    assert env.writes() == 0
