"""Early exits: the batch pool sends nothing after a failed batch, and the read-ahead thread never outlives
the consumer that stopped reading (issue 12, item 2)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.concurrency import map_in_parallel, map_until, stopping
from connectors.errors import ConfigurationError, QuotaExhaustedError, TransientError
from connectors.retry import RetryPolicy
from connectors.salesforce.write import CHUNK, LOCKED, CollectionWriter
from worker.sync.prefetch import read_ahead

WAIT_S = 5.0
"""Upper bound for a thread hand-over in these tests; each is over in microseconds unless the code is
broken, and then the assertion after the wait names what did not happen."""


def _until(condition: Callable[[], bool]) -> bool:
    """Poll `condition` in millisecond steps for up to WAIT_S; for a flag no event can signal."""
    deadline = time.monotonic() + WAIT_S
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.001)
    return True


def _read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "page-read-ahead"]


def test_a_failed_batch_stops_the_pool() -> None:
    """Batch 1 hits a quota stop while batch 0 is in flight: batch 0 sees `stopping()` and the six batches
    not started yet are never made; the quota error is raised once."""
    made: list[int] = []
    saw_stop: list[bool] = []

    def call(item: int) -> int:
        made.append(item)
        if item == 1:
            raise QuotaExhaustedError("daily limit")
        if item == 0:
            saw_stop.append(_until(stopping))
        return item

    with pytest.raises(QuotaExhaustedError, match="daily limit"):
        map_in_parallel(call, list(range(8)), max_in_flight=2)
    assert sorted(made) == [0, 1]
    assert saw_stop == [True]


@pytest.mark.parametrize("max_in_flight", [1, 3])
def test_a_failed_result_stops_the_pool_and_calls_not_made_are_none(max_in_flight: int) -> None:
    """`map_until`: a result that says it failed stops the pool like an exception; what was not made is
    None, what was made keeps its place, and the call that stopped the pool is named."""

    in_flight = threading.Barrier(3, timeout=WAIT_S)

    def call(item: int) -> tuple[int, bool]:
        if item in (0, 1, 2) and max_in_flight > 1:
            in_flight.wait()
        if item in (0, 2) and max_in_flight > 1:
            _until(stopping)
        return item, item == 1

    results, stopped_by = map_until(call, list(range(9)), max_in_flight, lambda result: result[1])
    assert stopped_by == 1
    assert results[:2] == [(0, False), (1, True)]
    assert results[2] == ((2, False) if max_in_flight > 1 else None)
    assert results[3:] == [None] * 6


def test_an_inner_pool_stops_with_the_pool_around_it_and_the_real_error_is_raised() -> None:
    """A batch that fans out (a pool inside a pool call) stops when a sibling of the outer pool fails; the
    outer pool raises the sibling's error, not the inner pool's PoolStopped."""
    inner_made: list[int] = []

    def inner(item: int) -> int:
        if item == 0:
            _until(stopping)
        inner_made.append(item)
        return item

    def outer(item: str) -> int:
        if item == "fails":
            raise QuotaExhaustedError("daily limit")
        return sum(map_in_parallel(inner, [0, 1, 2, 3], max_in_flight=1))

    with pytest.raises(QuotaExhaustedError):
        map_in_parallel(outer, ["fans out", "fails"], max_in_flight=2)
    assert inner_made == [0]
    assert stopping() is False


def test_a_batch_retrying_in_flight_gives_up_and_the_cause_is_raised() -> None:
    """Batch 0 meets a 503 just as batch 1 fails for good: batch 0 is not retried (one send), and the pool
    raises batch 1's error, the cause, although batch 0 comes first."""
    policy = RetryPolicy(max_attempts=3, base_delay=0.0, sleep=lambda _s: None, rng=random.Random(0))
    sends: list[int] = []

    def send_once() -> int:
        sends.append(0)
        _until(stopping)
        raise TransientError("Salesforce 503", status=503)

    def call(item: int) -> int:
        if item == 1:
            raise ConfigurationError("no access")
        return policy.call(send_once)

    with pytest.raises(ConfigurationError, match="no access"):
        map_in_parallel(call, [0, 1, 2], max_in_flight=2)
    assert sends == [0]
    assert policy.retries_used == 0


class _LockRetryPolicy:
    """The retry policy's `call_when`: `attempt` again while it raises what `retry_on` accepts."""

    def call_when(self, retry_on: Callable[[BaseException], bool], attempt: Callable[[], None]) -> None:
        for _ in range(3):
            try:
                attempt()
                return
            except Exception as exc:
                if not retry_on(exc):
                    raise
                _until(stopping)
        attempt()


class _Org:
    """A Salesforce org for CollectionWriter: the chunk starting at record 200 meets the quota stop, the
    first record of the first chunk is locked."""

    def __init__(self) -> None:
        self.policy = _LockRetryPolicy()
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def restful(self, path: str, method: str = "GET", json: Any = None) -> Any:
        ids = [record["id"] for record in json["records"]]
        with self._lock:
            self.sent.append(ids[0])
        if ids[0] == "r200":
            raise QuotaExhaustedError("REQUEST_LIMIT_EXCEEDED")
        return [
            {"success": False, "errors": [{"statusCode": LOCKED, "message": "locked"}]}
            if record_id == "r0"
            else {"success": True, "id": record_id}
            for record_id in ids
        ]


def test_a_quota_stop_ends_lock_retries_and_chunks_not_sent() -> None:
    """Salesforce status writes in three chunks, two at a time: the second meets the quota stop. The first
    does not re-send its locked row, the third is never sent; what landed is still known."""
    org = _Org()
    writer = CollectionWriter(org, max_in_flight=2)  # type: ignore[arg-type]
    records = [{"id": f"r{n}"} for n in range(3 * CHUNK)]
    results, error = writer.save_landed("composite/sobjects", "PATCH", records)
    assert isinstance(error, QuotaExhaustedError)
    assert sorted(org.sent) == ["r0", "r200"]
    first = results[:CHUNK]
    assert first[0] is not None and first[0].code == LOCKED
    assert all(r is not None and r.success for r in first[1:])
    assert results[CHUNK:] == [None] * (2 * CHUNK)


def _pages(events: dict[str, threading.Event], fail: bool) -> Iterator[int]:
    try:
        yield 1
        yield 2
        events["read"].set()
        if fail:
            raise QuotaExhaustedError("daily limit")
    finally:
        events["closed"].set()


@pytest.mark.parametrize("fail", [False, True], ids=["producer-at-the-end", "producer-failed"])
def test_a_producer_waiting_to_hand_over_ends_when_the_consumer_stops(fail: bool) -> None:
    """The consumer stops after page 1 while the producer has queued page 2 and waits to hand over the end
    of the pages (or its own error): stopping closes the handoff, the producer ends and is joined, and the
    connector's page iterator is closed."""
    events = {"read": threading.Event(), "closed": threading.Event()}
    before = set(_read_ahead_threads())
    reader = read_ahead(_pages(events, fail), join_timeout=WAIT_S)
    assert next(reader) == 1
    assert events["read"].wait(WAIT_S)
    reader.close()
    assert set(_read_ahead_threads()) == before
    assert events["closed"].is_set()


def test_a_serve_loop_of_early_stops_leaves_no_read_ahead_thread() -> None:
    """Runs in a row that each stop after their first page (as after a quota stop) leave no producer."""
    before = set(_read_ahead_threads())
    for _ in range(3):
        events = {"read": threading.Event(), "closed": threading.Event()}
        reader = read_ahead(_pages(events, fail=True), join_timeout=WAIT_S)
        next(reader)
        events["read"].wait(WAIT_S)
        reader.close()
    assert set(_read_ahead_threads()) == before


def test_a_producer_caught_in_a_slow_read_does_not_hold_the_run() -> None:
    """The consumer stops while the producer is still reading page 2 (a slow answer): the consumer waits
    at most `join_timeout`, and the producer, once its read returns, hands nothing over and ends."""
    answered = threading.Event()
    reading = threading.Event()

    def pages() -> Iterator[int]:
        yield 1
        reading.set()
        answered.wait(WAIT_S)
        yield 2
        yield 3

    before = set(_read_ahead_threads())
    reader = read_ahead(pages(), join_timeout=0.01)
    assert next(reader) == 1
    assert reading.wait(WAIT_S)
    reader.close()
    stuck = set(_read_ahead_threads()) - before
    assert len(stuck) == 1
    answered.set()
    for thread in stuck:
        thread.join(WAIT_S)
        assert not thread.is_alive()
