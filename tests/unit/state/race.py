"""Child-process side of the multi-process lease race (importable, so multiprocessing spawn can run it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.state import LeaseHeldError, StateStore

from .conftest import T0

ROUND_GAP = timedelta(hours=1)
TTL = timedelta(minutes=30)


def contend(url: str, schema: str | None, run_id: str, rounds: int, barrier: Any, results: Any) -> None:
    """Open a store (concurrently with the others: schema creation races too), then in each round wait
    for every process and try to take the lease at that round's time. Reports (round, run, token|holder)."""
    store = StateStore.open(url, schema=schema)
    try:
        for round_no in range(rounds):
            barrier.wait(60)
            now = T0 + round_no * ROUND_GAP
            try:
                lease = store.acquire_lease("sf", run_id, now, TTL)
            except LeaseHeldError as held:
                results.put((round_no, run_id, "held", held.holder_run_id))
            else:
                results.put((round_no, run_id, "won", lease.token))
    except BaseException as exc:
        barrier.abort()
        results.put((-1, run_id, "error", repr(exc)))
        raise
    finally:
        store.close()
