"""The lease under real concurrency: threads and processes racing for one connection, and fencing of a
holder that is overtaken while it keeps checkpointing."""

from __future__ import annotations

import multiprocessing
import threading
from collections import defaultdict
from datetime import timedelta

from connectors.model import Cursor
from worker.state import LeaseHeldError, LeaseLostError, RunRecord, StateStore, StatusChange

from . import race
from .conftest import T0, Target


def _check_rounds(results: list[tuple[int, str, str, object]], contenders: int, rounds: int) -> None:
    """Each round has exactly one winner; every loser names it; tokens grow round after round."""
    by_round: dict[int, list[tuple[str, str, object]]] = defaultdict(list)
    for round_no, run_id, outcome, detail in results:
        assert outcome != "error", detail
        by_round[round_no].append((run_id, outcome, detail))
    assert sorted(by_round) == list(range(rounds))
    tokens: list[int] = []
    for round_no in range(rounds):
        entries = by_round[round_no]
        assert len(entries) == contenders
        winners = [(run_id, detail) for run_id, outcome, detail in entries if outcome == "won"]
        assert len(winners) == 1, entries
        winner, token = winners[0]
        assert all(detail == winner for _, outcome, detail in entries if outcome == "held")
        assert isinstance(token, int)
        tokens.append(token)
    assert tokens == sorted(tokens) and len(set(tokens)) == rounds


def test_threads_racing_for_the_lease(store: StateStore) -> None:
    """8 threads sharing one store race acquire_lease 5 times: one winner per round, losers name it."""
    contenders, rounds = 8, 5
    barrier = threading.Barrier(contenders)
    results: list[tuple[int, str, str, object]] = []
    lock = threading.Lock()

    def contend(run_id: str) -> None:
        for round_no in range(rounds):
            barrier.wait(30)
            now = T0 + round_no * race.ROUND_GAP
            try:
                outcome: tuple[int, str, str, object] = (
                    round_no,
                    run_id,
                    "won",
                    store.acquire_lease("sf", run_id, now, race.TTL).token,
                )
            except LeaseHeldError as held:
                outcome = (round_no, run_id, "held", held.holder_run_id)
            except Exception as exc:
                outcome = (round_no, run_id, "error", repr(exc))
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=contend, args=(f"thread-{n}",)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _check_rounds(results, contenders, rounds)


def test_processes_racing_for_the_lease(target: Target) -> None:
    """4 spawned processes open the same fresh database at once and race 3 rounds: one winner each round."""
    contenders, rounds = 4, 3
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(contenders)
    queue = ctx.Queue()
    processes = [
        ctx.Process(
            target=race.contend, args=(target.url, target.schema, f"proc-{n}", rounds, barrier, queue)
        )
        for n in range(contenders)
    ]
    for process in processes:
        process.start()
    results: list[tuple[int, str, str, object]] = []
    try:
        while len(results) < contenders * rounds:
            results.append(queue.get(timeout=90))
            assert results[-1][2] != "error", results[-1]
    finally:
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.terminate()
    assert [p.exitcode for p in processes] == [0] * contenders
    _check_rounds(results, contenders, rounds)


def test_overtaken_holder_is_fenced_while_checkpointing(store: StateStore) -> None:
    """A holder checkpointing in a loop while another run takes its expired lease: its checkpoints succeed
    until the takeover and every one after it fails, and every row it wrote precedes the new holder's."""
    for run_id in ("old", "new"):
        store.start_run(RunRecord(run_id, "sf", "cli", "incremental", T0))
    old = store.acquire_lease("sf", "old", T0, timedelta(minutes=1))
    warmed_up = threading.Event()
    outcomes: list[bool] = []

    def keep_checkpointing() -> None:
        for n in range(100_000):
            change = StatusChange(f"old-{n}", None, "needs_qualification", (), T0)
            try:
                store.checkpoint(old, Cursor(T0 + timedelta(seconds=n), f"old-{n}"), [change], [], {"n": n})
                outcomes.append(True)
            except LeaseLostError:
                outcomes.append(False)
                if outcomes.count(False) == 5:
                    return
            if n == 20:
                warmed_up.set()

    worker = threading.Thread(target=keep_checkpointing)
    worker.start()
    assert warmed_up.wait(30)
    new = store.acquire_lease("sf", "new", T0 + timedelta(minutes=5), timedelta(minutes=10))
    for n in range(20):
        change = StatusChange(f"new-{n}", None, "qualified", (), T0)
        store.checkpoint(new, Cursor(T0 + timedelta(days=1, seconds=n), f"new-{n}"), [change], [], {"n": n})
    worker.join(60)

    succeeded = outcomes.count(True)
    assert outcomes == [True] * succeeded + [False] * 5
    assert succeeded >= 21
    rows = store.audit("sf", limit=succeeded + 20)
    old_seqs = [r.seq for r in rows if r.run_id == "old"]
    new_seqs = [r.seq for r in rows if r.run_id == "new"]
    assert len(old_seqs) == succeeded and len(new_seqs) == 20
    assert max(old_seqs) < min(new_seqs)
    assert store.get_cursor("sf") == Cursor(T0 + timedelta(days=1, seconds=19), "new-19")
