"""The console's session store, CSRF check and login throttle, on an injected clock (no waiting)."""

from __future__ import annotations

import pytest

from worker.serve.console.sessions import LoginThrottle, SessionStore, csrf_ok, token_ok


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_while_used_and_ends_after_the_idle_time() -> None:
    clock = Clock()
    store = SessionStore(idle_seconds=600, clock=clock)
    session = store.create()
    clock.now += 599
    assert store.get(session.id) is session, "used within the idle time: alive"
    clock.now += 599
    assert store.get(session.id) is session, "each request restarts the idle clock"
    clock.now += 600
    assert store.get(session.id) is None, "600 s without a request: ended"
    clock.now -= 600
    assert store.get(session.id) is None, "an ended session is forgotten, not revived"
    assert len(store) == 0


def test_sessions_are_random_distinct_and_deleted_at_logout() -> None:
    store = SessionStore(idle_seconds=60, clock=Clock())
    first, second = store.create(), store.create()
    assert first.id != second.id and first.csrf != second.csrf
    assert len(first.id) >= 40 and len(first.csrf) >= 40
    assert first.csrf != first.id
    store.delete(first.id)
    assert store.get(first.id) is None
    assert store.get(second.id) is second
    assert store.get("") is None and store.get(None) is None and store.get("made-up") is None


def test_the_store_keeps_at_most_max_sessions_dropping_the_least_recently_used() -> None:
    clock = Clock()
    store = SessionStore(idle_seconds=600, clock=clock, max_sessions=2)
    old = store.create()
    clock.now += 1
    used = store.create()
    clock.now += 1
    store.get(old.id)
    clock.now += 1
    store.create()
    assert store.get(old.id) is old
    assert store.get(used.id) is None
    assert len(store) == 2


def test_the_idle_time_must_be_positive() -> None:
    with pytest.raises(ValueError, match="idle_seconds"):
        SessionStore(idle_seconds=0)


def test_csrf_needs_the_session_s_own_token() -> None:
    store = SessionStore(idle_seconds=60, clock=Clock())
    mine, other = store.create(), store.create()
    assert csrf_ok(mine, mine.csrf)
    assert not csrf_ok(mine, other.csrf)
    assert not csrf_ok(mine, None)
    assert not csrf_ok(mine, "")
    assert not csrf_ok(mine, mine.id), "the session id is not the CSRF token"


def test_token_ok_compares_the_whole_token() -> None:
    token = "ops-token-0123456789abcdef0123456789"
    assert token_ok(token, token)
    assert not token_ok(token[:-1], token)
    assert not token_ok(token + "x", token)
    assert not token_ok("", token)


def test_the_throttle_locks_a_client_out_after_repeated_failures_for_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, max_failures=3, window_seconds=300)
    for _ in range(2):
        throttle.failed("10.0.0.1")
        clock.now += 10
    assert throttle.locked_for("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    assert throttle.locked_for("10.0.0.1") == pytest.approx(280)
    assert throttle.locked_for("10.0.0.2") == 0, "another client is not locked out"
    clock.now += 281
    assert throttle.locked_for("10.0.0.1") == 0, "the oldest failure left the window"


def test_a_successful_login_clears_the_client_s_failures() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock, max_failures=2, window_seconds=300)
    throttle.failed("c")
    throttle.succeeded("c")
    throttle.failed("c")
    assert throttle.locked_for("c") == 0
