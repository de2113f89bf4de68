"""The shared retry policy: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    QuotaExhaustedError,
    RowRejectedError,
    TransientError,
)
from connectors.retry import (
    MAX_RETRY_AFTER,
    RetryBudget,
    RetryPolicy,
    SingleAttempt,
    parse_retry_after,
    retry_after_header,
)


class Flaky:
    """Fails with the given errors in order, then returns 'ok'."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return value


def make(sleeps: list[float], **kw: object) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, rng=random.Random(1), **kw)  # type: ignore[arg-type]


def test_transient_errors_are_retried_until_success() -> None:
    """Two transient failures then success: three attempts, two sleeps, two retries spent."""
    sleeps: list[float] = []
    policy = make(sleeps)
    fn = Flaky(TransientError("503"), TransientError("timeout"))
    assert policy.call(fn, "done") == "done"
    assert fn.calls == 3
    assert len(sleeps) == 2
    assert policy.retries_used == 2


@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError("bad field"),
        QuotaExhaustedError("quota"),
        AuthenticationError("denied"),
        RowRejectedError("nope", code="FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        ValueError("bug"),
    ],
    ids=["config", "quota", "auth", "row", "bug"],
)
def test_non_transient_errors_pass_through_untouched(error: Exception) -> None:
    """Anything but TransientError is raised on the first attempt, the same object, no sleep."""
    sleeps: list[float] = []
    policy = make(sleeps)
    fn = Flaky(error)
    with pytest.raises(type(error)) as caught:
        policy.call(fn)
    assert caught.value is error
    assert fn.calls == 1
    assert sleeps == []
    assert policy.retries_used == 0


def test_attempt_cap_reraises_the_last_transient_error() -> None:
    """With max_attempts=3 the third failure propagates as itself after exactly two sleeps."""
    sleeps: list[float] = []
    policy = make(sleeps, max_attempts=3)
    last = TransientError("third")
    fn = Flaky(TransientError("1"), TransientError("2"), last, TransientError("never reached"))
    with pytest.raises(TransientError) as caught:
        policy.call(fn)
    assert caught.value is last
    assert fn.calls == 3
    assert len(sleeps) == 2


def test_retry_after_hint_is_honoured_exactly() -> None:
    """A CRM Retry-After of 7 s is the wait, not the backoff; an absurd hint is capped."""
    sleeps: list[float] = []
    policy = make(sleeps)
    fn = Flaky(TransientError("429", retry_after=7), TransientError("429", retry_after=10_000))
    policy.call(fn)
    assert sleeps == [7.0, MAX_RETRY_AFTER]


def test_backoff_grows_exponentially_with_jitter_and_cap() -> None:
    """Delays lie in [d/2, d] for d = base*2^(n-1), capped at max_delay."""
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, rng=random.Random(3))
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        delay = policy.backoff(attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_jitter_is_reproducible_from_the_seed() -> None:
    """Two policies seeded alike wait the same; a different seed waits differently."""
    a = [RetryPolicy(rng=random.Random(5)).backoff(3) for _ in range(1)]
    b = [RetryPolicy(rng=random.Random(5)).backoff(3) for _ in range(1)]
    c = [RetryPolicy(rng=random.Random(6)).backoff(3) for _ in range(1)]
    assert a == b
    assert a != c


def test_run_budget_is_shared_across_calls_and_stops_retrying() -> None:
    """Budget 3: the first call spends 2 retries, the second gets 1 more then raises."""
    sleeps: list[float] = []
    policy = make(sleeps, run_budget=3, max_attempts=10)
    policy.call(Flaky(TransientError("a"), TransientError("b")))
    fn = Flaky(*[TransientError(str(i)) for i in range(5)])
    with pytest.raises(TransientError):
        policy.call(fn)
    assert fn.calls == 2
    assert policy.retries_used == 3
    assert len(sleeps) == 3


def test_budget_object_can_be_shared_between_policies() -> None:
    """Two policies built on one RetryBudget draw from the same pool."""
    budget = RetryBudget(1)
    first = RetryPolicy(sleep=lambda s: None, budget=budget)
    second = RetryPolicy(sleep=lambda s: None, budget=budget)
    first.call(Flaky(TransientError("x")))
    with pytest.raises(TransientError):
        second.call(Flaky(TransientError("y")))
    assert budget.remaining == 0


def test_zero_budget_means_no_retry() -> None:
    """run_budget=0 turns retries off: one attempt only."""
    fn = Flaky(TransientError("x"))
    with pytest.raises(TransientError):
        RetryPolicy(run_budget=0, sleep=lambda s: None).call(fn)
    assert fn.calls == 1


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"run_budget": -1}], ids=["attempts", "budget"])
def test_invalid_settings_are_refused(kwargs: dict[str, int]) -> None:
    """Nonsense limits fail at construction, not mid-run."""
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_call_when_retries_only_what_the_predicate_accepts() -> None:
    """A narrower predicate lets other transient errors through on the first attempt."""

    class Locked(TransientError):
        pass

    sleeps: list[float] = []
    policy = make(sleeps)
    assert policy.call_when(lambda e: isinstance(e, Locked), Flaky(Locked("row"))) == "ok"
    other = Flaky(TransientError("503"))
    with pytest.raises(TransientError):
        policy.call_when(lambda e: isinstance(e, Locked), other)
    assert other.calls == 1
    assert len(sleeps) == 1


_RA_NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 12 ", 12.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("100000", MAX_RETRY_AFTER),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wednesday, 21-Oct-15 07:28:30 GMT", 90.0),
        ("Wed Oct 21 07:29:00 2015", 120.0),
        ("Wed, 21 Oct 2015 07:20:00 GMT", 0.0),
        ("Thu, 22 Oct 2015 07:27:00 GMT", MAX_RETRY_AFTER),
        ("soon", None),
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
    ids=[
        "seconds",
        "seconds-padded",
        "zero",
        "negative-clamped",
        "seconds-clamped",
        "imf-fixdate",
        "rfc850-date",
        "asctime-date",
        "date-in-the-past",
        "date-clamped",
        "garbage",
        "impossible-date",
        "nan",
        "empty",
        "absent",
    ],
)
def test_retry_after_is_read_as_seconds_or_http_date(value: str | None, expected: float | None) -> None:
    """Retry-After as delay-seconds or an HTTP-date (from the injected clock), clamped; junk is None."""
    assert parse_retry_after(value, lambda: _RA_NOW) == expected


def test_retry_after_header_is_found_case_insensitively() -> None:
    """The header is matched whatever its case, and absent headers give None."""
    assert retry_after_header({"retry-after": "Wed, 21 Oct 2015 07:27:05 GMT"}, lambda: _RA_NOW) == 5.0
    assert retry_after_header({"Content-Type": "x"}, lambda: _RA_NOW) is None
    assert retry_after_header(None) is None


def test_single_attempt_scope_is_per_thread_and_restores_the_outer_scope() -> None:
    """A nested scope leaves the outer one active; the scope never leaks to another thread."""
    scope = SingleAttempt()
    seen: list[bool] = []
    with scope():
        with scope():
            assert scope.active
        assert scope.active
        worker = threading.Thread(target=lambda: seen.append(scope.active))
        worker.start()
        worker.join()
    assert not scope.active
    assert seen == [False]
