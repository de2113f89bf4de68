"""Sending independent batch calls side by side, so a run is bounded by the CRM's rate limit rather than by
one request's round trip. Callers keep ordering constraints themselves (a deal's status before its task).

Each call runs in a copy of the caller's context (`contextvars`), so log lines from the pool's threads carry
the run's `run_id` and `connection` bound with `structlog.contextvars`."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_in_parallel(fn: Callable[[T], R], items: Sequence[T], max_in_flight: int) -> list[R]:
    """`[fn(item) for item in items]`, with up to `max_in_flight` calls at once; results in input order.
    The first exception (in input order) is raised once every call has finished."""
    if max_in_flight <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(
        max_workers=min(max_in_flight, len(items)), thread_name_prefix="crm-batch"
    ) as pool:
        futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
    return [future.result() for future in futures]
