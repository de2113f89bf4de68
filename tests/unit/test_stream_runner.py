"""StreamRunner: following a CRM change stream in `serve`. Batches are recorded, then their position saved,
then the coalescer told; a dropped stream resumes from the saved position (at once after it delivered, with
backoff while it cannot be opened); an expired position or a CRM-reported overflow asks for an incremental
run; shutdown cancels the open streams. The change streams here are scripted (no CRM); nothing sleeps."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ReplayExpiredError,
    TransientError,
)
from connectors.model import ChangeBatch, DealChange
from connectors.salesforce.settings import SalesforceSettings
from tests.log_sink import Sink
from tests.unit.serve_support import connection, make_worker
from worker.events import EventCoalescer, StreamRunner, inbound_events
from worker.serve.scheduler import (
    build_coalescer,
    build_stream_runner,
    event_connections,
    run_scheduled,
    schedule_reconcile,
    stream_connections,
)
from worker.state import StateStore

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
NAME = "sf"

Step = ChangeBatch | Exception


def _change(event_id: str, *deals: str, echo: bool = False) -> DealChange:
    return DealChange(event_id, deals, T0 - timedelta(seconds=1), echo)


def _batch(position: str, *changes: DealChange, reconcile: bool = False) -> ChangeBatch:
    at = changes[-1].occurred_at if changes else None
    return ChangeBatch(tuple(changes), position, at, reconcile)


class FakeStream:
    """A scripted subscription: yields its batches, raises its exceptions; after the script, either ends
    the test (stops the runner) or blocks until cancelled (`block`)."""

    def __init__(self, source: FakeSource, steps: Sequence[Step], block: bool) -> None:
        self._source, self._steps, self._block = source, steps, block
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def __iter__(self) -> Iterator[ChangeBatch]:
        for step in self._steps:
            if isinstance(step, Exception):
                raise step
            yield step
        if self._block:
            self._source.blocking.set()
            self.cancelled.wait(10)
            return
        assert self._source.runner is not None
        self._source.runner.stop()


@dataclass
class FakeSource:
    """A connector with a change stream: each `change_stream` call takes the next script."""

    scripts: list[Sequence[Step]]
    block: bool = False
    positions: list[str | None] = field(default_factory=list)
    streams: list[FakeStream] = field(default_factory=list)
    closed: int = 0
    runner: StreamRunner | None = None
    blocking: threading.Event = field(default_factory=threading.Event)

    @property
    def changes_enabled(self) -> bool:
        return True

    def change_stream(self, position: str | None) -> FakeStream:
        self.positions.append(position)
        steps = self.scripts.pop(0) if self.scripts else []
        stream = FakeStream(self, steps, self.block)
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        self.closed += 1


@dataclass
class Harness:
    store: StateStore
    source: FakeSource
    runner: StreamRunner
    notified: list[tuple[str, list[str], str | None]] = field(default_factory=list)
    reconciled: list[tuple[str, str | None]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    opened: int = 0

    def position(self) -> str | None:
        saved = self.store.stream_position(NAME)
        return saved.position if saved is not None else None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


def _harness(store: StateStore, *scripts: Sequence[Step], block: bool = False) -> Harness:
    source = FakeSource(list(scripts), block=block)
    stop = threading.Event()
    harness: Harness

    def open_source(name: str) -> FakeSource:
        assert name == NAME
        harness.opened += 1
        return source

    def notify(name: str) -> None:
        # Told only after the batch was recorded and its position saved.
        harness.notified.append((name, store.dirty_deals(name, 10), harness.position()))

    def reconcile(name: str) -> None:
        harness.reconciled.append((name, harness.position()))

    def wait(seconds: float) -> bool:
        harness.waits.append(seconds)
        return stop.is_set()

    runner = StreamRunner(
        store, [NAME], open_source, notify, reconcile, clock=lambda: T0, wait=wait, stop=stop
    )
    source.runner = runner
    harness = Harness(store, source, runner)
    return harness


def test_a_batch_is_recorded_then_its_position_saved_then_the_coalescer_told(store: StateStore) -> None:
    h = _harness(store, [_batch("0a", _change("09", "006A"), _change("0a", "006B", echo=True))])
    h.runner.follow(NAME)
    assert h.source.positions == [None]  # nothing saved: from the newest event
    assert store.dirty_deals(NAME, 10) == ["006A"]  # the echo marks nothing
    assert h.notified == [(NAME, ["006A"], "0a")]
    saved = store.stream_position(NAME)
    assert saved is not None and saved.position == "0a" and saved.event_at == T0 - timedelta(seconds=1)
    assert store.event_counts(NAME) == {"received": 2, "duplicates": 0, "echoes": 1, "dirty": 1}
    assert h.reconciled == [] and h.waits == []
    assert h.source.closed == 1  # the connector is closed when the thread ends


def test_one_event_per_deal_a_change_names() -> None:
    events = inbound_events(_batch("0b", _change("0b", "006A", "006B")))
    assert [(e.event_id, e.deal_id) for e in events] == [("0b:006A", "006A"), ("0b:006B", "006B")]


def test_a_keepalive_moves_the_position_and_tells_nobody(store: StateStore) -> None:
    h = _harness(store, [_batch("0c")])
    h.runner.follow(NAME)
    assert h.position() == "0c"
    assert h.notified == [] and store.event_counts(NAME)["received"] == 0


def test_the_stream_resumes_from_the_saved_position(store: StateStore) -> None:
    store.save_stream_position(NAME, "07", None, T0)
    h = _harness(store, [_batch("08", _change("08", "006A"))])
    h.runner.follow(NAME)
    assert h.source.positions == ["07"]
    assert h.position() == "08"


def test_a_stream_that_drops_after_delivering_resubscribes_at_once_from_the_saved_position(
    store: StateStore, sink: Sink
) -> None:
    h = _harness(
        store,
        [_batch("01", _change("01", "006A")), TransientError("stream reset")],
        [_batch("01", _change("01", "006A")), _batch("02", _change("02", "006B"))],  # 01 again: at least once
    )
    h.runner.follow(NAME)
    assert h.source.positions == [None, "01"]
    assert h.waits == []
    assert sorted(store.dirty_deals(NAME, 10)) == ["006A", "006B"]
    assert store.event_counts(NAME)["duplicates"] == 1
    assert h.position() == "02"
    assert sink.events("change stream dropped; subscribing again from the saved position")


def test_a_stream_that_cannot_be_opened_is_retried_with_backoff(store: StateStore, sink: Sink) -> None:
    down = [TransientError("unavailable")]
    h = _harness(store, down, down, down, [_batch("05", _change("05", "006A"))])
    h.runner.follow(NAME)
    assert h.waits == [1, 2, 4]
    assert h.source.positions == [None, None, None, None]
    assert h.opened == 1  # the same connector (and its login) across attempts
    retries = sink.events("change stream unavailable; subscribing again from the saved position")
    assert [line["attempt"] for line in retries] == [1, 2, 3]
    assert all(line["level"] == "warning" for line in retries)


def test_the_backoff_starts_again_after_a_stream_that_delivered(store: StateStore) -> None:
    down = [TransientError("unavailable")]
    h = _harness(
        store,
        down,
        down,
        [_batch("01", _change("01", "006A")), TransientError("reset")],
        down,
        [_batch("02")],
    )
    h.runner.follow(NAME)
    assert h.waits == [1, 2, 1]


def test_an_expired_position_resubscribes_from_now_then_asks_for_an_incremental_run(
    store: StateStore, sink: Sink
) -> None:
    store.save_stream_position(NAME, "01", None, T0 - timedelta(days=4))
    h = _harness(store, [ReplayExpiredError("too old")], [_batch("90"), _batch("91", _change("91", "006A"))])
    h.runner.follow(NAME)
    assert h.source.positions == ["01", None]
    assert h.reconciled == [(NAME, "90")]  # once, after the new position was saved
    assert h.position() == "91"
    (expired,) = sink.events(
        "change stream position expired; subscribing from the newest event, then an incremental run "
        "reconciles the gap"
    )
    assert expired["level"] == "warning"
    (gap,) = sink.events("change stream gap: an incremental run reconciles it")
    assert gap["reason"] == "position expired"


def test_an_overflow_the_crm_reports_asks_for_an_incremental_run_without_resubscribing(
    store: StateStore,
) -> None:
    h = _harness(store, [_batch("30", _change("2f", "006A")), _batch("31", reconcile=True), _batch("32")])
    h.runner.follow(NAME)
    assert h.source.positions == [None]
    assert h.reconciled == [(NAME, "31")]


@pytest.mark.parametrize(
    "error", [ConfigurationError("CDC is not enabled for Opportunity"), AuthenticationError("token refused")]
)
def test_an_error_a_person_must_fix_is_logged_and_tried_again_much_later(
    store: StateStore, sink: Sink, error: Exception
) -> None:
    h = _harness(store, [error], [_batch("01")])
    h.runner.follow(NAME)
    assert h.waits == [300.0]
    assert h.opened == 2 and h.source.closed == 2  # a fresh connector (and login) after the failure
    (failed,) = sink.events("change stream failed; trying again later")
    assert failed["level"] == "error" and str(error) in failed["error"]


def test_a_crm_refusing_to_start_from_now_is_not_taken_for_a_gap(store: StateStore, sink: Sink) -> None:
    h = _harness(store, [ReplayExpiredError("?")], [_batch("01")])
    h.runner.follow(NAME)
    assert h.reconciled == [] and h.waits == [300.0]


class Webhooks:
    """A connector without a change stream (its CRM pushes by webhook) whose close fails."""

    closed = 0

    def close(self) -> None:
        Webhooks.closed += 1
        raise OSError("already closed")


def test_a_connector_without_a_change_stream_is_an_error_not_a_crash(store: StateStore, sink: Sink) -> None:
    stop = threading.Event()

    def wait(seconds: float) -> bool:
        stop.set()
        return True

    runner = StreamRunner(
        store, [NAME], lambda name: Webhooks(), print, print, clock=lambda: T0, wait=wait, stop=stop
    )
    runner.follow(NAME)
    (failed,) = sink.events("change stream failed; trying again later")
    assert "has no change stream" in failed["error"]
    assert Webhooks.closed == 1  # closed, and its failing close only logged
    assert sink.events("closing a change stream's connector failed")
    assert sink.events("change stream stopped")


def test_stop_cancels_the_open_streams_and_ends_the_threads(store: StateStore, sink: Sink) -> None:
    h = _harness(store, [_batch("01", _change("01", "006A"))], block=True)
    h.runner.start()
    assert h.source.blocking.wait(10), "the stream thread did not subscribe"
    assert h.notified == [(NAME, ["006A"], "01")]
    h.runner.stop()
    (stream,) = h.source.streams
    assert stream.cancelled.is_set()
    assert h.runner.running == []
    assert h.source.closed == 1
    assert sink.events("change stream stopped")


def test_serve_follows_the_streams_of_the_connections_with_change_events_on(tmp_path: Path) -> None:
    """`change_events = true` gives a connection a coalescer window and a stream thread; a gap's
    incremental run is one scheduler job per connection, waiting for a busy lease like the catch-up."""

    def salesforce(name: str, on: bool) -> object:
        settings = SalesforceSettings(
            auth="token", instance_url="https://x.my.salesforce.com", change_events=on
        )
        return replace(connection(name, misfire_grace_seconds=1200), crm="salesforce", crm_settings=settings)

    worker = make_worker(tmp_path, salesforce("sf", True), salesforce("quiet", False), connection("other"))  # type: ignore[arg-type]
    try:
        assert [c.name for c in event_connections(worker)] == ["sf"]
        assert [c.name for c in stream_connections(worker)] == ["sf"]
        coalescer = build_coalescer(worker)
        assert coalescer is not None
        runner = build_stream_runner(worker, coalescer, lambda name: None)
        assert runner is not None and runner.connections == ["sf"] and runner.running == []
        coalescer.close()

        scheduler = BackgroundScheduler(timezone=UTC)
        scheduler.start(paused=True)  # as in serve: started (paused here, so the job stays put)
        try:
            schedule_reconcile(scheduler, worker, "sf")
            schedule_reconcile(scheduler, worker, "sf")  # a second gap before the first run: one job
            (job,) = scheduler.get_jobs()
            assert job.id == "sf:reconcile" and job.func is run_scheduled
            assert job.args == (worker, "sf", "incremental")
            assert job.kwargs == {"lease_wait_seconds": 1200.0}
        finally:
            scheduler.shutdown(wait=False)
    finally:
        worker.close()


def test_serve_has_no_stream_runner_without_a_streaming_connection(tmp_path: Path) -> None:
    worker = make_worker(tmp_path, connection("hs"))
    try:
        coalescer = EventCoalescer(lambda name: None)
        assert build_stream_runner(worker, coalescer, lambda name: None) is None
    finally:
        worker.close()
