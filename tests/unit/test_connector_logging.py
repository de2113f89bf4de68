"""Connector and worker-thread log lines: retries, give-ups, and run context carried into threads."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from connectors.concurrency import map_in_parallel
from connectors.errors import TransientError
from connectors.hubspot.ratelimit import OTHER, SEARCH, RateLimiter
from connectors.retry import RetryPolicy
from tests.log_sink import Sink
from worker.sync.prefetch import read_ahead


def flaky(*errors: BaseException) -> Any:
    pending = list(errors)

    def call(value: str) -> str:
        if pending:
            raise pending.pop(0)
        return value

    return call


def test_a_retried_503_logs_the_wait_with_attempt_and_run_context(sink: Sink) -> None:
    """Two 503s then success: two `retrying` lines with attempt, wait_s, status and the bound run context."""
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append, rng=random.Random(3))
    structlog.contextvars.bind_contextvars(run_id="r-1", connection="hs-main")
    errors = [TransientError("503", status=503), TransientError("503", status=503)]
    assert policy.call(flaky(*errors), "ok") == "ok"
    first, second = sink.events("retrying")
    assert (first["attempt"], first["level"]) == (1, "info")
    assert (second["attempt"], second["level"]) == (2, "warning")
    assert [first["wait_s"], second["wait_s"]] == [round(s, 3) for s in sleeps]
    assert first["status"] == 503 and first["error_kind"] == "TransientError"
    assert first["run_id"] == "r-1" and first["connection"] == "hs-main"
    assert "call" in first
    assert sink.events("retry gave up") == []


def test_a_retry_after_hint_is_the_logged_wait(sink: Sink) -> None:
    """A 429 with Retry-After 7 logs wait_s=7 and retry_after=7."""
    policy = RetryPolicy(sleep=lambda _s: None)
    policy.call(flaky(TransientError("429", retry_after=7, status=429)), "ok")
    (line,) = sink.events("retrying")
    assert (line["wait_s"], line["retry_after"], line["status"]) == (7.0, 7, 429)


def test_giving_up_after_max_attempts_logs_a_warning(sink: Sink) -> None:
    """Three 503s with max_attempts=3: two waits, then one `retry gave up` at warning naming the reason."""
    policy = RetryPolicy(max_attempts=3, sleep=lambda _s: None)
    with pytest.raises(TransientError):
        policy.call(flaky(*[TransientError("503", status=503) for _ in range(3)]), "ok")
    assert len(sink.events("retrying")) == 2
    (gave_up,) = sink.events("retry gave up")
    assert (gave_up["level"], gave_up["reason"], gave_up["attempt"]) == ("warning", "max_attempts", 3)


def test_a_spent_run_budget_is_logged_as_the_give_up_reason(sink: Sink) -> None:
    """With no retries left in the run budget the first transient error gives up at once."""
    policy = RetryPolicy(run_budget=0, sleep=lambda _s: None)
    with pytest.raises(TransientError):
        policy.call(flaky(TransientError("timeout")), "ok")
    (gave_up,) = sink.events("retry gave up")
    assert gave_up["reason"] == "run_budget_spent"
    assert sink.events("retrying") == []


def test_lines_logged_inside_map_in_parallel_carry_the_run_context(sink: Sink) -> None:
    """Every batch call logs from a pool thread with the caller's run_id and connection."""
    structlog.contextvars.bind_contextvars(run_id="r-2", connection="sf-prod")
    threads: set[str] = set()

    def work(item: int) -> int:
        threads.add(threading.current_thread().name)
        structlog.get_logger().info("batch sent", item=item)
        return item

    assert map_in_parallel(work, list(range(6)), max_in_flight=3) == list(range(6))
    lines = sink.events("batch sent")
    assert len(lines) == 6
    assert {(line["run_id"], line["connection"]) for line in lines} == {("r-2", "sf-prod")}
    assert all(name.startswith("crm-batch") for name in threads)


def test_lines_logged_by_the_read_ahead_thread_carry_the_run_context(sink: Sink) -> None:
    """The page producer logs from its own thread with the consumer's run_id and connection."""
    structlog.contextvars.bind_contextvars(run_id="r-3", connection="hs-main")

    def pages() -> Iterator[int]:
        for page in range(3):
            structlog.get_logger().info("page read", page=page, thread=threading.current_thread().name)
            yield page

    assert list(read_ahead(pages())) == [0, 1, 2]
    lines = sink.events("page read")
    assert [line["page"] for line in lines] == [0, 1, 2]
    assert {(line["run_id"], line["connection"], line["thread"]) for line in lines} == {
        ("r-3", "hs-main", "page-read-ahead")
    }


class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_hubspot_throttling_logs_one_line_per_long_wait_not_per_call(sink: Sink) -> None:
    """300 calls at 100 per 10 s wait twice for the burst window: two `hubspot throttling` lines, not 300."""
    t = FakeTime()
    limiter = RateLimiter(100, 4, clock=t.clock, sleep=t.sleep)
    for _ in range(300):
        limiter.acquire(OTHER)
        limiter.release(OTHER)
    lines = sink.events("hubspot throttling")
    assert len(lines) == 2
    assert {(line["level"], line["window"], line["kind"], line["limit"]) for line in lines} == {
        ("info", "burst", OTHER, 100)
    }
    assert all(line["wait_s"] > 1.0 for line in lines)


def test_routine_search_pacing_is_not_logged(sink: Sink) -> None:
    """40 searches at 4 per second wait up to a second each time: routine pacing, no line."""
    t = FakeTime()
    limiter = RateLimiter(190, 4, clock=t.clock, sleep=t.sleep)
    for _ in range(40):
        limiter.acquire(SEARCH)
        limiter.release(SEARCH)
    assert t.now - 1000.0 >= 9.0
    assert sink.lines == []


def test_rate_limit_headers_that_tighten_the_window_log_once_per_interval(sink: Sink) -> None:
    """Headers saying 10 of 100 calls are left log `tightened` once; again only after the window interval."""
    t = FakeTime()
    limiter = RateLimiter(100, 4, clock=t.clock, sleep=t.sleep)
    headers = {"X-HubSpot-RateLimit-Remaining": "10", "X-HubSpot-RateLimit-Max": "100"}
    for _ in range(5):
        limiter.acquire(OTHER)
        limiter.release(OTHER, headers)
    (line,) = sink.events("hubspot rate limit tightened")
    assert (line["window"], line["remaining"], line["limit"], line["counted_for_others"]) == (
        "burst",
        10,
        100,
        89,
    )
    t.now += 10.0
    limiter.acquire(OTHER)
    limiter.release(OTHER, {"X-HubSpot-RateLimit-Remaining": "5", "X-HubSpot-RateLimit-Max": "100"})
    assert len(sink.events("hubspot rate limit tightened")) == 2


def test_a_429_logs_a_warning_naming_the_policy(sink: Sink) -> None:
    """`throttled` after a 429 logs `hubspot rate limit hit` at warning with the window it saturated."""
    limiter = RateLimiter(100, 4, clock=FakeTime().clock, sleep=lambda _s: None)
    limiter.throttled(SEARCH, "SECONDLY")
    (line,) = sink.events("hubspot rate limit hit")
    assert (line["level"], line["window"], line["policy"], line["status"]) == (
        "warning",
        "search",
        "SECONDLY",
        429,
    )
