"""Following a CRM's change stream in `serve` (Salesforce Change Data Capture), CRM-neutral.

`StreamRunner` runs one daemon thread per connection whose connector streams its changes
(`connectors.protocol.StreamsChanges`, on when the connection's settings say so). Each thread:

1. subscribes from the connection's saved position (`StateStore.stream_position`), or from the newest
   event when none is saved;
2. for each batch: records its changes as InboundEvents (one per deal; a resent one is a duplicate, an echo
   marks nothing), THEN saves the batch's position, THEN tells the coalescer when a deal was marked. A
   crash between the two writes re-delivers the batch on resubscription: at least once, deduplicated;
3. when the stream drops (TransientError, or the state store briefly unavailable): subscribes again from
   the saved position, at once after a stream that delivered, else with exponential backoff (tenacity,
   capped), so nothing is lost and a CRM outage is not hammered;
4. when the saved position is past the CRM's retention (ReplayExpiredError), or the CRM says it dropped
   changes it cannot name (a batch with `reconcile`, Salesforce `GAP_OVERFLOW`): forgets the position,
   subscribes from the newest event, saves the first position it gets, then asks for an incremental run
   (`reconcile(connection)`), which catches whatever the gap hid; logged at WARNING;
5. any other error (credentials, CDC not enabled for Opportunity, a wrong endpoint) is logged at ERROR
   with what to fix, and tried again `failure_wait_seconds` later (a person may fix it meanwhile).

`stop()` (shutdown) cancels every open stream and joins the threads. Time is injected: `clock` (aware
UTC datetimes for the store), `wait(seconds) -> stop?` for every pause, so tests never wait for real.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential
from tenacity.wait import wait_base

from connectors.errors import ConnectorError, ReplayExpiredError, TransientError
from connectors.model import ChangeBatch
from connectors.protocol import ChangeStream, StreamsChanges
from worker.state import InboundEvent, StateStore
from worker.state.errors import StateUnavailableError

log = structlog.get_logger()

RETRIED = (TransientError, StateUnavailableError)
"""A dropped stream or a briefly unavailable state store: subscribe again from the saved position."""
BACKOFF = wait_exponential(multiplier=1, min=1, max=60)
"""1, 2, 4 … 60 seconds between attempts while the stream cannot be opened."""
FAILURE_WAIT_SECONDS = 300.0
JOIN_SECONDS = 10.0

Wait = Callable[[float], bool]
"""Waits up to N seconds; True means "stop now"."""


def inbound_events(batch: ChangeBatch) -> list[InboundEvent]:
    """One InboundEvent per deal a change names, its id `<change id>:<deal id>` (a change can name many)."""
    return [
        InboundEvent(f"{change.event_id}:{deal_id}", deal_id, change.occurred_at, change.echo)
        for change in batch.changes
        for deal_id in change.deal_ids
    ]


class StreamRunner:
    """The change-stream threads of `serve`; see the module docstring."""

    def __init__(
        self,
        store: StateStore,
        connections: Iterable[str],
        open_source: Callable[[str], object],
        notify: Callable[[str], None],
        reconcile: Callable[[str], None],
        *,
        clock: Callable[[], datetime],
        wait: Wait | None = None,
        stop: threading.Event | None = None,
        backoff: wait_base = BACKOFF,
        failure_wait_seconds: float = FAILURE_WAIT_SECONDS,
    ) -> None:
        self.connections: Sequence[str] = sorted(connections)
        self._store = store
        self._open_source = open_source
        self._notify = notify
        self._reconcile = reconcile
        self._clock = clock
        self._stop = stop or threading.Event()
        self._wait = wait or self._stop.wait
        self._backoff = backoff
        self._failure_wait = failure_wait_seconds
        self._lock = threading.Lock()
        self._streams: dict[str, ChangeStream] = {}
        self._gaps: set[str] = set()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """One daemon thread per connection, following its stream until `stop()`."""
        for name in self.connections:
            thread = threading.Thread(target=self.follow, args=(name,), name=f"changes-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("change streams started", connections=list(self.connections))

    @property
    def running(self) -> list[str]:
        """The names of the stream threads still alive."""
        return [t.name for t in self._threads if t.is_alive()]

    def stop(self, timeout: float = JOIN_SECONDS) -> None:
        """Cancel every open stream and wait (up to `timeout` each) for the threads to end."""
        self._stop.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.cancel()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._threads:
            log.warning("change streams still ending", threads=[t.name for t in self._threads])

    def follow(self, name: str) -> None:
        """Follow `name`'s change stream until `stop()` (the body of its thread; tests call it directly)."""
        source: StreamsChanges | None = None
        try:
            while not self._stop.is_set():
                try:
                    if source is None:
                        source = self._open(name)
                    self._follow_retrying(name, source)
                except RETRIED:
                    continue  # only when stopping: the retry loop stops on the stop event
                except ReplayExpiredError as exc:
                    self._expired(name, exc)
                except ConnectorError as exc:
                    if self._stop.is_set():
                        break
                    log.error(
                        "change stream failed; trying again later",
                        connection=name,
                        error=str(exc),
                        hint=getattr(exc, "hint", None),
                        retry_in_seconds=self._failure_wait,
                    )
                    self._close(source)
                    source = None
                    self._wait(self._failure_wait)
                except Exception as exc:
                    if self._stop.is_set():
                        break  # a wait cut short by the shutdown (RunStopped), or the store closing
                    log.exception(
                        "change stream crashed; trying again later",
                        connection=name,
                        error=f"{type(exc).__name__}: {exc}"[:500],
                        retry_in_seconds=self._failure_wait,
                    )
                    self._close(source)
                    source = None
                    self._wait(self._failure_wait)
        finally:
            self._close(source)
            log.info("change stream stopped", connection=name)

    def _open(self, name: str) -> StreamsChanges:
        source = self._open_source(name)
        if not isinstance(source, StreamsChanges):
            self._close(source)
            raise ConnectorError(
                f"connection {name!r}: its CRM has no change stream (turn change events off)"
            )
        return source

    @staticmethod
    def _close(source: object) -> None:
        """Close the connector (its HTTP sessions); a failure to close is logged, never raised."""
        close = getattr(source, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:
                log.warning(
                    "closing a change stream's connector failed", error=f"{type(exc).__name__}: {exc}"
                )

    def _follow_retrying(self, name: str, source: StreamsChanges) -> None:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else None
            log.warning(
                "change stream unavailable; subscribing again from the saved position",
                connection=name,
                attempt=state.attempt_number,
                retry_in_seconds=delay,
                error=str(error),
            )

        retrying = Retrying(
            retry=retry_if_exception_type(RETRIED),
            wait=self._backoff,
            stop=stop_when_event_set(self._stop),
            sleep=self._pause,
            before_sleep=before_sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self._subscribe(name, source)

    def _pause(self, seconds: float) -> None:
        self._wait(seconds)

    def _subscribe(self, name: str, source: StreamsChanges) -> None:
        """One subscription, until it ends. Raises what ended it, unless it delivered something first (then
        the caller subscribes again at once)."""
        if self._stop.is_set():
            return
        saved = self._store.stream_position(name)
        position = saved.position if saved is not None else None
        stream = source.change_stream(position)
        with self._lock:
            self._streams[name] = stream
        if self._stop.is_set():
            stream.cancel()
        delivered = False
        batches = iter(stream)
        try:
            for batch in batches:
                delivered = True
                self._handle(name, batch)
        except RETRIED as exc:
            if not delivered:
                raise
            log.warning(
                "change stream dropped; subscribing again from the saved position",
                connection=name,
                error=str(exc),
            )
        except ReplayExpiredError:
            if position is None:  # nothing to forget: a CRM refusing "from now on" is not a gap
                raise ConnectorError(f"connection {name!r}: the change stream refused to start") from None
            raise
        finally:
            with self._lock:
                self._streams.pop(name, None)
            stream.cancel()
            close = getattr(batches, "close", None)
            if callable(close):
                close()

    def _handle(self, name: str, batch: ChangeBatch) -> None:
        now = self._clock()
        events = inbound_events(batch)
        marked = 0
        if events:
            tally = self._store.record_events(name, events, now)
            marked = tally.marked
            log.debug(
                "change events recorded",
                connection=name,
                received=tally.received,
                duplicates=tally.duplicates,
                echoes=tally.echoes,
                marked=tally.marked,
            )
        if batch.position:
            self._store.save_stream_position(name, batch.position, batch.position_at, now)
        if marked:
            self._notify(name)
        gap = name in self._gaps
        if batch.reconcile or gap:
            self._gaps.discard(name)
            log.warning(
                "change stream gap: an incremental run reconciles it",
                connection=name,
                reason="position expired" if gap else "the CRM dropped changes it cannot name",
            )
            self._reconcile(name)

    def _expired(self, name: str, exc: ReplayExpiredError) -> None:
        log.warning(
            "change stream position expired; subscribing from the newest event, then an incremental run "
            "reconciles the gap",
            connection=name,
            error=str(exc),
        )
        self._store.forget_stream_position(name)
        self._gaps.add(name)
