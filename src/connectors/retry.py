"""The one retry policy every connector applies at its single request seam.

Only `TransientError` is retried (timeouts, 5xx, 429, lock contention); every other error — configuration,
quota, authentication, row rejection — passes through untouched on the first attempt. Each request gets at
most `max_attempts` attempts; across a whole run at most `run_budget` retries are spent (one shared
`RetryBudget`), after which the last TransientError propagates so the run stops instead of hammering a
struggling CRM. Waits honour the CRM's `retry_after` hint, otherwise exponential backoff with jitter from a
seedable `random.Random`. `sleep` is injected so tests never wait for real.

Non-idempotent calls (creates whose lost answer must be reconciled by key, never re-sent) are marked one
way, on both CRMs: `with client.single_attempt():` around them. Both clients build that on `SingleAttempt`,
a scope held in a context variable that their request seam reads: the batch threads a create fans out to
run in a copy of the caller's context and so send once too, while the read-ahead thread (started before,
in its own context) keeps retrying.

`parse_retry_after` is the one reading of a `Retry-After` header for every CRM: delay-seconds or an
HTTP-date (RFC 9110 §10.2.3), relative to an injected clock, clamped to [0, MAX_RETRY_AFTER].
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception

from connectors.concurrency import stopping
from connectors.errors import TransientError

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger()

MAX_RETRY_AFTER = 900.0
"""Ceiling on a CRM's Retry-After hint (seconds): a longer hint is waited for this long, then the call is
tried again (a stop signal or the run's deadline cuts any wait short). The worker's `sleep` waits any of
it in slices of at most a third of the lease TTL, checking the run's lease after each
(worker.service.Worker.sleep), so a long wait never outlasts the lease."""


def utc_now() -> datetime:
    """The real clock, for clients not given one."""
    return datetime.now(UTC)


def parse_retry_after(
    value: str | None, now: Callable[[], datetime] = utc_now, ceiling: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3) taken
    relative to `now()`, clamped to [0, ceiling]; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # RFC 9110: an HTTP-date is always GMT
        seconds = (when - now()).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), ceiling)


def retry_after_header(
    headers: Mapping[str, str] | None, now: Callable[[], datetime] = utc_now
) -> float | None:
    """`parse_retry_after` of the `Retry-After` header in `headers`, matched case-insensitively."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            return parse_retry_after(value, now)
    return None


class SingleAttempt:
    """A "send once" scope for one client's request seam, held in a context variable: it covers this thread
    and the threads a batch fans out to (they run in a copy of the caller's context), but not threads
    started elsewhere; nested scopes restore the outer one."""

    def __init__(self) -> None:
        self._active: contextvars.ContextVar[bool] = contextvars.ContextVar(
            f"single_attempt_{id(self)}", default=False
        )

    @property
    def active(self) -> bool:
        """True inside the scope: the seam sends once and lets the error through."""
        return self._active.get()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        token = self._active.set(True)
        try:
            yield
        finally:
            self._active.reset(token)


class RetryBudget:
    """Retries left for one run, shared by every policy (and thread) of that run."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("run_budget must be >= 0")
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    @property
    def remaining(self) -> int:
        return self.limit - self._used

    def try_spend(self) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        with self._lock:
            if self._used >= self.limit:
                return False
            self._used += 1
            return True


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, TransientError)


_HUBSPOT_KINDS = ("search", "other")
"""The first argument of HubSpot's request seam; only then are the next two (api, method) named in logs."""


def _describe_call(state: RetryCallState) -> str:
    """The retried call, named without its arguments (which may carry record data or headers): the
    function's qualified name, plus `api.method` for a HubSpot request seam `(kind, api, method, ...)`."""
    fn: Any = state.fn
    name = str(getattr(fn, "__qualname__", None) or type(fn).__name__)
    args = state.args
    if len(args) >= 3 and args[0] in _HUBSPOT_KINDS and all(isinstance(a, str) for a in args[1:3]):
        name += f"({args[1]}.{args[2]})"
    return name


def _error_fields(error: BaseException | None) -> dict[str, Any]:
    """The error's kind and, when it has one, the HTTP status; the message is secret-free by contract."""
    if error is None:
        return {}
    return {
        "error_kind": type(error).__name__,
        "status": getattr(error, "status", None),
        "error": str(error)[:300],
    }


class RetryPolicy:
    """Retry `TransientError`s with backoff, per-request attempt cap and a per-run retry budget.

    `policy.call(fn, *args, **kwargs)` returns fn's result or raises its last error.
    """

    def __init__(
        self,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        run_budget: int = 200,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.budget = budget if budget is not None else RetryBudget(run_budget)
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self.slept: float = 0.0

    @property
    def retries_used(self) -> int:
        return self.budget.used

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number `attempt` (1-based): equal-jitter exponential, capped."""
        ceiling: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        jitter: float = self._rng.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter

    def delay_for(self, attempt: int, error: BaseException | None) -> float:
        """How long to wait before the next attempt: the CRM's hint when it gave one, else backoff."""
        hint = error.retry_after if isinstance(error, TransientError) else None
        if hint is not None and hint >= 0:
            return min(float(hint), MAX_RETRY_AFTER)
        return self.backoff(attempt)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        return self.delay_for(state.attempt_number, error)

    def _stop(self, state: RetryCallState) -> bool:
        reason = None
        if state.attempt_number >= self.max_attempts:
            reason = "max_attempts"
        elif stopping():
            reason = "batch_pool_stopped"
        elif not self.budget.try_spend():
            reason = "run_budget_spent"
        if reason is None:
            return False
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "retry gave up",
            call=_describe_call(state),
            attempt=state.attempt_number,
            reason=reason,
            max_attempts=self.max_attempts,
            retries_used=self.budget.used,
            run_budget=self.budget.limit,
            **_error_fields(error),
        )
        return True

    def _before_sleep(self, state: RetryCallState) -> None:
        """One line per wait: INFO for a request's first retry, WARNING once it keeps failing."""
        error = state.outcome.exception() if state.outcome is not None else None
        wait_s = round(state.upcoming_sleep, 3)
        level = log.info if state.attempt_number <= 1 else log.warning
        level(
            "retrying",
            call=_describe_call(state),
            attempt=state.attempt_number,
            max_attempts=self.max_attempts,
            wait_s=wait_s,
            retry_after=getattr(error, "retry_after", None),
            retries_used=self.budget.used,
            run_budget=self.budget.limit,
            **_error_fields(error),
        )

    def _do_sleep(self, seconds: float) -> None:
        self.slept += seconds
        self._sleep(seconds)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return self.call_when(_is_transient, fn, *args, **kwargs)

    def call_when(
        self,
        predicate: Callable[[BaseException], bool],
        fn: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Like `call`, but retry only the errors `predicate` accepts (e.g. one TransientError subclass, so
        a row-level retry never re-retries what the request seam already retried)."""
        retrying = Retrying(
            retry=retry_if_exception(predicate),
            stop=self._stop,
            wait=self._wait,
            sleep=self._do_sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)
