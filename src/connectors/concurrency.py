"""Sending independent batch calls side by side, so a run is bounded by the CRM's rate limit rather than by
one request's round trip. Callers keep ordering constraints themselves (a deal's status before its task).

A pool stops at its first failure: a quota stop or a fatal error means every further call would fail the
same way (or should not be made at all), so a call that has not started yet is not made, and calls in
flight that send more than one request (retries, lock retries, narrowing a refused batch) see `stopping()`
turn true and send nothing more. The failure that stopped the pool is raised once, after the calls in
flight have returned.

Each call runs in a copy of the caller's context (`contextvars`), so log lines from the pool's threads carry
the run's `run_id` and `connection` bound with `structlog.contextvars`; the copy also carries the pool's
stop flag (and those of the pools around it), which is how `stopping()` knows.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")

_STOPS: contextvars.ContextVar[tuple[threading.Event, ...]] = contextvars.ContextVar(
    "batch_pool_stops", default=()
)
_SKIPPED = object()


class PoolStopped(Exception):
    """A call cut short because a sibling call failed. It never leaves the outermost pool: the pool raises
    the sibling's error instead."""


def stopping() -> bool:
    """True inside a pool call once another call of this pool (or of a pool around it) failed. A call that
    sends several requests checks it before each one after the first and sends nothing more."""
    return any(stop.is_set() for stop in _STOPS.get())


def map_in_parallel(fn: Callable[[T], R], items: Sequence[T], max_in_flight: int) -> list[R]:
    """`[fn(item) for item in items]`, with up to `max_in_flight` calls at once; results in input order.
    Once a call raises, calls not started yet are not made; when the calls in flight have returned, the
    error that stopped the pool is raised (not an error a call in flight met because it was stopping)."""
    outcomes, _stopped_by = _run(fn, items, max_in_flight, lambda _result: False)
    if any(outcome is _SKIPPED for outcome in outcomes):
        raise PoolStopped("a batch of an enclosing pool failed")
    return cast(list[R], outcomes)


def map_until(
    fn: Callable[[T], R], items: Sequence[T], max_in_flight: int, failed: Callable[[R], bool]
) -> tuple[list[R | None], int | None]:
    """Like `map_in_parallel`, for calls that return their failure instead of raising it: a result for
    which `failed` is true stops the pool too. Returns the results, None for each call not made, and the
    index of the call whose failure stopped the pool (the cause to report), if one did."""
    outcomes, stopped_by = _run(fn, items, max_in_flight, failed)
    return [None if outcome is _SKIPPED else cast(R, outcome) for outcome in outcomes], stopped_by


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _run(
    fn: Callable[[T], R], items: Sequence[T], max_in_flight: int, failed: Callable[[R], bool]
) -> tuple[list[object], int | None]:
    """Every call's result (or _SKIPPED), and the index of the first call to fail; an error raised by a
    call is raised here once every call has returned: the first one's, unless it was only cut short."""
    stop = threading.Event()
    stops = (*_STOPS.get(), stop)
    first: list[int] = []
    lock = threading.Lock()

    def stopped_by(index: int) -> None:
        with lock:
            if not first:
                first.append(index)
        stop.set()

    def call(index: int, item: T) -> object:
        if any(flag.is_set() for flag in stops):
            return _SKIPPED
        _STOPS.set(stops)
        try:
            result = fn(item)
        except BaseException as exc:  # raised by the pool once the calls in flight are done
            stopped_by(index)
            return _Raised(exc)
        if failed(result):
            stopped_by(index)
        return result

    if max_in_flight <= 1 or len(items) <= 1:
        outcomes = [contextvars.copy_context().run(call, index, item) for index, item in enumerate(items)]
    else:
        with ThreadPoolExecutor(
            max_workers=min(max_in_flight, len(items)), thread_name_prefix="crm-batch"
        ) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, call, index, item)
                for index, item in enumerate(items)
            ]
        outcomes = [future.result() for future in futures]
    raised = [outcome.error for outcome in outcomes if isinstance(outcome, _Raised)]
    if raised:
        cause = outcomes[first[0]]
        genuine = [error for error in raised if not isinstance(error, PoolStopped)]
        if isinstance(cause, _Raised) and not isinstance(cause.error, PoolStopped):
            raise cause.error
        raise (genuine or raised)[0]
    return outcomes, (first[0] if first else None)
