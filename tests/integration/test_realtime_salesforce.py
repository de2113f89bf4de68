"""Near-real-time on Salesforce, end to end: a rep edits an opportunity in the sandbox, the sandbox's Pub/Sub
API streams the change event to the StreamRunner (built as `serve` builds it, following the connection's
change stream on its own thread), the event is recorded and the coalescer (on a hand-driven clock) starts
one EVENTS run that re-assesses the deal: its status and task change without any scheduled run.
Duplicated, out-of-order and echoed events change nothing twice; a dropped stream and a restarted `serve`
resume from the saved replay id with nothing lost; a gap past the 72-hour retention asks for an incremental
run, which catches the edits the gap hid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from sandbox import Sandbox, SandboxOptions
from sandbox.salesforce.pubsub import PubSubServer
from tests.integration.conftest import CrmView, Env, sandbox_env
from tests.integration.test_realtime_hubspot import ManualClock
from tests.log_sink import Sink
from worker.config.loader import load_settings
from worker.events import EventCoalescer, StreamRunner
from worker.serve.scheduler import build_coalescer, build_stream_runner, schedule_reconcile
from worker.state import StateStore
from worker.state.model import RunMode, Trigger

NAME = "salesforce"
UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}
WAIT = 30.0


@dataclass
class Live:
    """The sandbox env plus what `serve` runs for the connection: the coalescer, the change-stream thread
    and the scheduler that takes a gap's incremental run."""

    env: Env
    clock: ManualClock = field(default_factory=ManualClock)
    coalescer: EventCoalescer | None = None
    streams: StreamRunner | None = None
    scheduler: BackgroundScheduler | None = None

    @property
    def store(self) -> StateStore:
        return self.env.worker.store

    @property
    def pubsub(self) -> PubSubServer:
        assert self.env.sb.pubsub is not None
        return self.env.sb.pubsub

    def serve(self) -> None:
        """Start what `serve` starts, on the current worker; wait until the stream is subscribed."""
        worker = self.env.worker
        self.clock = ManualClock()
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.start()
        scheduler = self.scheduler
        self.coalescer = build_coalescer(worker, clock=self.clock, timer_factory=self.clock.timer)
        assert self.coalescer is not None
        self.streams = build_stream_runner(
            worker,
            self.coalescer,
            lambda name: schedule_reconcile(scheduler, worker, name),
            wait=lambda seconds: worker.stop.wait(min(seconds, 0.05)),  # no real backoff in tests
        )
        assert self.streams is not None and self.streams.connections == [NAME]
        self.until(lambda: self.pubsub.active_streams == 0, "the last stream to end")
        self.streams.start()
        assert self.pubsub.wait_for_subscribers(1, WAIT), "the change stream did not subscribe"

    def shutdown(self) -> None:
        """What `serve` does on SIGTERM: the stream is cancelled, the coalescer and the scheduler stop."""
        self.env.worker.stop.set()
        if self.streams is not None:
            self.streams.stop()
            assert self.streams.running == []
        if self.coalescer is not None:
            self.coalescer.close(wait=True)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        self.streams = self.coalescer = self.scheduler = None

    def restart(self) -> None:
        """A new bant-sync process on the same config and state (not serving yet)."""
        self.shutdown()
        self.env.restart()

    def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def position(self) -> str:
        saved = self.store.stream_position(NAME)
        return saved.position if saved is not None else ""

    def counts(self) -> dict[str, int]:
        return self.store.event_counts(NAME)

    def dirty(self) -> list[str]:
        return sorted(self.store.dirty_deals(NAME, 100))

    def runs(self, mode: str | None = None) -> list[str]:
        return [r.run_id for r in self.store.list_runs(NAME, 100) if mode is None or r.mode == mode]

    def settle(self, received: int) -> None:
        """Wait until `received` events in all were recorded, their position saved and the coalescer told
        of the deals they marked (the stream thread does the three in that order)."""
        self.until(lambda: self.counts()["received"] >= received, f"{received} events recorded")
        assert self.counts()["received"] == received, self.counts()
        coalescer = self.coalescer
        assert coalescer is not None
        self.until(lambda: coalescer.pending() == [NAME], "the coalescer to be told")

    def reassess(self) -> None:
        """Let the coalescer's window close (hand-driven): the EVENTS run, if any, happens now."""
        assert self.coalescer is not None
        self.clock.advance(self.coalescer.window(NAME)[1])


def _enable_change_events(env: Env) -> None:
    text = env.config.read_text(encoding="utf-8")
    assert 'crm = "salesforce"\n' in text and "pubsub_endpoint" in text
    env.config.write_text(text.replace('crm = "salesforce"\n', 'crm = "salesforce"\nchange_events = true\n'))
    env.restart()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    options = SandboxOptions(
        seed="track-selling", seed_value=7, enforce_rate_limits=False, pubsub_keepalive_seconds=0.2
    )
    with sandbox_env(NAME, tmp_path, options) as env:
        _enable_change_events(env)
        assert env.run("incremental").status == "succeeded"
        live = Live(env)
        live.serve()
        try:
            yield live
        finally:
            live.shutdown()


def _flagged(live: Live, count: int) -> list[str]:
    deals = live.env.view.deals()
    found = sorted(d for d, info in deals.items() if info["open"] and info["status"] in UNQUALIFIED)
    flagged = [d for d in found if live.env.view.open_tasks_of(d)][:count]
    assert len(flagged) == count
    return flagged


def _qualified(live: Live, *deals: str) -> bool:
    view = live.env.view
    return all(view.deals()[d]["status"] == "qualified" and not view.open_tasks_of(d) for d in deals)


def test_a_reps_edit_is_reassessed_by_an_event_run_without_a_scheduled_run(live: Live) -> None:
    env = live.env
    (deal,) = _flagged(live, 1)
    runs_before = len(live.runs())

    env.view.fix_bant(deal)  # one save of four fields: one change event
    live.settle(1)
    assert live.dirty() == [deal]
    assert live.coalescer is not None and live.coalescer.pending() == [NAME]
    assert len(live.runs()) == runs_before  # recorded only: nothing ran yet
    saved = live.store.stream_position(NAME)
    assert saved is not None and saved.event_at is not None

    live.reassess()
    (run_id,) = live.runs(RunMode.EVENTS)
    record = live.store.get_run(run_id)
    assert record is not None and record.trigger == Trigger.EVENT and record.status == "succeeded"
    assert len(live.runs()) == runs_before + 1
    assert _qualified(live, deal)
    assert live.dirty() == []

    # The run's status write comes back as a change event naming client=bant-sync: an echo, marking nothing.
    live.until(lambda: live.counts()["echoes"] >= 1, "the write-back's echo")
    assert live.dirty() == [] and live.coalescer.pending() == []
    live.reassess()
    assert len(live.runs(RunMode.EVENTS)) == 1


def test_duplicated_out_of_order_and_echoed_events_change_nothing_twice(live: Live) -> None:
    env = live.env
    first, second = _flagged(live, 2)
    live.pubsub.set_faults(duplicate=True, out_of_order=True)
    env.view.set_deal_field(first, "budget", "1")  # not enough: still unqualified ...
    env.view.fix_bant(first)  # ... then properly filled in
    env.view.fix_bant(second)
    live.settle(6)  # three events, each sent twice
    counts = live.counts()
    assert counts["duplicates"] == 3 and counts["echoes"] == 0
    assert live.dirty() == sorted([first, second])

    env.sb.reset_requests()
    live.reassess()
    assert len(live.runs(RunMode.EVENTS)) == 1
    assert _qualified(live, first, second)
    for deal in (first, second):
        assert len(env.view.tasks_of(deal)) == 1
    assert env.writes() > 0

    # Both status writes come back (twice each, the fault is still on): echoes and their duplicates.
    live.until(lambda: live.counts()["echoes"] >= 2, "the write-backs' echoes")
    live.until(lambda: live.counts()["received"] >= 10, "the echoes' copies")
    assert live.dirty() == []
    assert live.coalescer is not None and live.coalescer.pending() == []
    env.sb.reset_requests()
    live.reassess()
    assert len(live.runs(RunMode.EVENTS)) == 1
    assert env.writes() == 0


def test_a_dropped_stream_and_a_restart_resume_from_the_saved_replay_id(live: Live) -> None:
    env = live.env
    first, second, third = _flagged(live, 3)
    opened = live.pubsub.counters.snapshot()["streams_opened"]
    live.pubsub.set_faults(drop_after=1)  # the stream is cut right after the first event
    env.view.fix_bant(first)
    env.view.fix_bant(second)
    live.settle(2)
    assert live.pubsub.counters.snapshot()["streams_opened"] > opened  # it subscribed again ...
    assert live.counts()["duplicates"] == 0  # ... after the first event, whose replay id it had saved
    assert live.dirty() == sorted([first, second])
    live.pubsub.clear_faults()

    # serve stops; a rep edits meanwhile; serve starts again and the stream resumes where it was.
    before = live.store.stream_position(NAME)
    live.restart()
    env.view.fix_bant(third)
    live.serve()
    live.settle(3)
    assert live.dirty() == sorted([first, second, third])
    assert before is not None
    live.until(lambda: live.position() > before.position, "the position saved after the third event")

    live.reassess()
    assert len(live.runs(RunMode.EVENTS)) == 1
    assert _qualified(live, first, second, third)


def test_a_gap_past_retention_is_caught_by_an_incremental_run(live: Live, sink: Sink) -> None:
    env = live.env
    (deal,) = _flagged(live, 1)
    live.until(lambda: live.store.stream_position(NAME) is not None, "a keepalive's position saved")
    live.restart()
    env.view.fix_bant(deal)  # while serve is down ...
    expired = live.pubsub.expire_events()  # ... for longer than Salesforce keeps events
    assert expired > 0
    incremental_before = len(live.runs(RunMode.INCREMENTAL))
    stale = live.store.stream_position(NAME)
    assert stale is not None

    live.serve()
    live.until(
        lambda: (
            len(live.runs(RunMode.INCREMENTAL)) > incremental_before
            and all(r.finished_at is not None for r in live.store.list_runs(NAME, 1))
        ),
        "the incremental run that reconciles the gap",
    )
    assert _qualified(live, deal)
    assert live.runs(RunMode.EVENTS) == []  # the edit never came as an event: the run caught it
    fresh = live.store.stream_position(NAME)
    assert fresh is not None and fresh.position != stale.position
    (warning,) = sink.events(
        "change stream position expired; subscribing from the newest event, then an incremental run "
        "reconciles the gap"
    )
    assert warning["level"] == "warning"
    (gap,) = sink.events("change stream gap: an incremental run reconciles it")
    assert gap["connection"] == NAME and gap["reason"] == "position expired"


@pytest.mark.slow
def test_serve_follows_the_change_stream_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    """`bant-sync serve` itself (a process): with `change_events = true` it subscribes after its catch-up
    run, a rep's edit is re-assessed by an EVENTS run, and SIGTERM cancels the stream and exits 0."""
    options = SandboxOptions(
        seed="track-selling", seed_value=7, enforce_rate_limits=False, pubsub_keepalive_seconds=0.2
    )
    with Sandbox.start(options) as sb:
        config = tmp_path / "sb.toml"
        sb.write_config(config)
        text = config.read_text(encoding="utf-8")
        text = text.replace(
            'crm = "salesforce"\n',
            'crm = "salesforce"\nchange_events = true\nevent_debounce_seconds = 0.2\n'
            "event_max_delay_seconds = 1.0\n",
        )
        text = text.replace('crm = "hubspot"\n', 'crm = "hubspot"\nenabled = false\n')
        config.write_text(text, encoding="utf-8")
        store = StateStore.open(load_settings(str(config), environ={}).state.database_url())
        env = {k: v for k, v in os.environ.items() if not k.startswith("BANT_SYNC_")}
        command = [sys.executable, "-m", "worker.cli.app", "serve", "--config", str(config), "--no-api"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        view = CrmView(sb, NAME)
        try:
            assert sb.pubsub is not None and sb.pubsub.wait_for_subscribers(1, WAIT), (
                "serve did not subscribe"
            )
            deadline = time.monotonic() + WAIT
            while not any(r.finished_at for r in store.list_runs(NAME, 10) if r.mode == RunMode.INCREMENTAL):
                assert process.poll() is None and time.monotonic() < deadline, "no catch-up run"
                time.sleep(0.05)
            deals = view.deals()
            deal = next(
                d
                for d in sorted(deals)
                if deals[d]["open"] and deals[d]["status"] in UNQUALIFIED and view.open_tasks_of(d)
            )
            view.fix_bant(deal)
            deadline = time.monotonic() + WAIT
            while not [r for r in store.list_runs(NAME, 10) if r.mode == RunMode.EVENTS and r.finished_at]:
                assert process.poll() is None and time.monotonic() < deadline, "no EVENTS run"
                time.sleep(0.05)
            assert view.deals()[deal]["status"] == "qualified" and view.open_tasks_of(deal) == []
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                _out, err = process.communicate(timeout=WAIT)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                store.close()
        assert process.returncode == 0, err.decode(errors="replace")[-2000:]
        assert b"change stream stopped" in err and b"stopped cleanly" in err
