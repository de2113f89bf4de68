"""checkpoint(): cursor, audit rows, deal states and run counters in one fenced transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from connectors.model import Cursor
from rules.model import Status
from worker.state import NO_OWNER, DealState, LeaseLostError, RunRecord, StateStore, StatusChange

from .conftest import T0

TTL = timedelta(minutes=10)


def _run(store: StateStore, run_id: str, connection: str = "sf") -> None:
    store.start_run(RunRecord(run_id, connection, "cli", "incremental", T0))


def _change(deal_id: str, new: str, old: str | None = None, minute: int = 0) -> StatusChange:
    return StatusChange(
        deal_id, old, new, ("budget",) if new != "qualified" else (), T0 + timedelta(minutes=minute)
    )


def _state(deal_id: str, status: str, owner: str | None = "005A", minute: int = 0) -> DealState:
    return DealState(deal_id, owner, status, (), T0 + timedelta(minutes=minute))


def test_no_cursor_before_first_checkpoint(store: StateStore) -> None:
    """A connection never checkpointed has no cursor."""
    assert store.get_cursor("sf") is None


def test_checkpoint_records_everything(store: StateStore) -> None:
    """One checkpoint saves the cursor, audit rows, deal states and the run's counters."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    cursor = Cursor(T0 - timedelta(hours=1), "006B")
    store.checkpoint(
        lease,
        cursor,
        [_change("006A", "needs_qualification"), _change("006B", "poc_unqualified", "qualified")],
        [_state("006A", "needs_qualification"), _state("006B", "poc_unqualified", owner=None)],
        {"read": 2, "written": 2},
    )
    assert store.get_cursor("sf") == cursor
    rows = store.audit("sf")
    assert [(r.deal_id, r.old_status, r.new_status, r.run_id) for r in rows] == [
        ("006B", "qualified", "poc_unqualified", "run-1"),
        ("006A", None, "needs_qualification", "run-1"),
    ]
    assert rows[0].missing == ("budget",) and rows[0].at == T0
    assert store.status_counts("sf") == {"needs_qualification": 1, "poc_unqualified": 1}
    assert store.unqualified_by_owner("sf") == {"005A": 1, NO_OWNER: 1}
    run = store.get_run("run-1")
    assert run is not None and run.counts == {"read": 2, "written": 2}


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (Cursor(T0 - timedelta(seconds=1), "006Z"), Cursor(T0, "006M")),
        (Cursor(T0, "006A"), Cursor(T0, "006M")),
        (Cursor(T0, "006M"), Cursor(T0, "006M")),
        (None, Cursor(T0, "006M")),
        (Cursor(T0, "006N"), Cursor(T0, "006N")),
        (Cursor(T0 + timedelta(microseconds=1), "0"), Cursor(T0 + timedelta(microseconds=1), "0")),
    ],
    ids=["older-time", "same-time-smaller-id", "equal", "none", "same-time-larger-id", "newer-by-1us"],
)
def test_cursor_never_moves_backwards(store: StateStore, second: Cursor | None, expected: Cursor) -> None:
    """A checkpoint behind the saved (modified_at, deal_id) leaves the cursor where it was."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    store.checkpoint(lease, Cursor(T0, "006M"), [], [], {})
    store.checkpoint(lease, second, [], [], {})
    assert store.get_cursor("sf") == expected


def test_cursors_are_per_connection(store: StateStore) -> None:
    """Each connection keeps its own cursor."""
    for connection in ("sf", "hubspot"):
        _run(store, f"run-{connection}", connection)
    sf = store.acquire_lease("sf", "run-sf", T0, TTL)
    hs = store.acquire_lease("hubspot", "run-hubspot", T0, TTL)
    store.checkpoint(sf, Cursor(T0, "006A"), [], [], {})
    store.checkpoint(hs, Cursor(T0 - TTL, "123"), [], [], {})
    assert store.get_cursor("sf") == Cursor(T0, "006A")
    assert store.get_cursor("hubspot") == Cursor(T0 - TTL, "123")


def test_stale_token_checkpoint_is_refused_and_writes_nothing(store: StateStore) -> None:
    """After an expired lease is taken over, the old holder's checkpoint raises and changes nothing."""
    _run(store, "run-1")
    _run(store, "run-2")
    old = store.acquire_lease("sf", "run-1", T0, TTL)
    store.checkpoint(old, Cursor(T0 - TTL, "006A"), [], [], {"read": 1})
    new = store.acquire_lease("sf", "run-2", T0 + TTL, TTL)
    with pytest.raises(LeaseLostError) as caught:
        store.checkpoint(
            old,
            Cursor(T0, "006Z"),
            [_change("006Z", "needs_qualification")],
            [_state("006Z", "qualify_out")],
            {"read": 9},
        )
    assert caught.value.holder_run_id == "run-2"
    assert store.get_cursor("sf") == Cursor(T0 - TTL, "006A")
    assert store.audit("sf") == []
    assert store.status_counts("sf") == {}
    run = store.get_run("run-1")
    assert run is not None and run.counts == {"read": 1}
    store.checkpoint(new, Cursor(T0, "006Z"), [], [], {})
    assert store.get_cursor("sf") == Cursor(T0, "006Z")


def test_released_lease_cannot_checkpoint(store: StateStore) -> None:
    """A checkpoint after release is refused."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    store.release_lease(lease)
    with pytest.raises(LeaseLostError):
        store.checkpoint(lease, Cursor(T0, "006A"), [], [], {})
    assert store.get_cursor("sf") is None


def test_expired_but_untaken_lease_can_still_checkpoint(store: StateStore) -> None:
    """Expiry alone does not fence: a lease past its expiry that nobody took over still checkpoints."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    assert store.lease_holder("sf", T0 + 2 * TTL) is None
    store.checkpoint(lease, Cursor(T0, "006A"), [], [], {})
    assert store.get_cursor("sf") == Cursor(T0, "006A")


def test_failure_halfway_through_a_checkpoint_writes_nothing(store: StateStore) -> None:
    """A checkpoint whose last write fails (a deal state without id) is rolled back whole."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    broken = DealState(None, "005A", "qualified", (), T0)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        store.checkpoint(
            lease, Cursor(T0, "006A"), [_change("006A", "needs_qualification")], [broken], {"read": 1}
        )
    assert store.get_cursor("sf") is None
    assert store.audit("sf") == []
    run = store.get_run("run-1")
    assert run is not None and run.counts == {}


def test_deal_state_upsert_keeps_the_newest(store: StateStore) -> None:
    """Later states replace earlier ones per deal; an older snapshot never overwrites a newer one."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    store.checkpoint(lease, None, [], [_state("006A", "needs_qualification", minute=5)], {})
    store.checkpoint(lease, None, [], [_state("006A", "qualified", minute=1)], {})
    assert store.status_counts("sf") == {"needs_qualification": 1}
    store.checkpoint(
        lease,
        None,
        [],
        [_state("006A", "poc_unqualified", owner="005B", minute=6), _state("006A", "qualified", minute=7)],
        {},
    )
    assert store.status_counts("sf") == {"qualified": 1}
    assert store.unqualified_by_owner("sf") == {}


def test_status_reports_count_per_status_and_owner(store: StateStore) -> None:
    """status_counts counts every status; unqualified_by_owner counts only the unqualified ones."""
    _run(store, "run-1")
    _run(store, "run-h", "hubspot")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    states = [
        _state("1", "qualified", "005A"),
        _state("2", "needs_qualification", "005A"),
        _state("3", "poc_unqualified", "005A"),
        _state("4", "qualify_out", "005B"),
        _state("5", "not_evaluated", "005B"),
        _state("6", "needs_qualification", None),
        _state("7", "needs_qualification", ""),
    ]
    store.checkpoint(lease, None, [], states, {})
    other = store.acquire_lease("hubspot", "run-h", T0, TTL)
    store.checkpoint(other, None, [], [_state("1", "needs_qualification", "9")], {})
    assert store.status_counts("sf") == {
        "qualified": 1,
        "needs_qualification": 3,
        "poc_unqualified": 1,
        "qualify_out": 1,
        "not_evaluated": 1,
    }
    assert store.unqualified_by_owner("sf") == {"005A": 2, "005B": 1, NO_OWNER: 2}
    assert store.unqualified_by_owner("hubspot") == {"9": 1}


def test_audit_filters_by_deal_and_limits_newest_first(store: StateStore) -> None:
    """audit() returns one deal's changes when asked, newest first, at most `limit`."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    for minute in range(5):
        store.checkpoint(lease, None, [_change("A", f"s{minute}", minute=minute), _change("B", "x")], [], {})
    rows = store.audit("sf", deal_id="A", limit=3)
    assert [r.new_status for r in rows] == ["s4", "s3", "s2"]
    assert len(store.audit("sf")) == 10
    assert [r.seq for r in store.audit("sf")] == sorted((r.seq for r in store.audit("sf")), reverse=True)
    assert store.audit("hubspot") == []


def test_status_enum_members_are_stored_as_their_values(store: StateStore) -> None:
    """rules.model.Status members go in and plain status strings come out, the same on both backends."""
    _run(store, "run-1")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    change = StatusChange("006A", Status.QUALIFIED, Status.POC_UNQUALIFIED, ("budget",), T0)
    state = DealState("006A", "005A", Status.POC_UNQUALIFIED, ("budget",), T0)
    store.checkpoint(lease, None, [change], [state], {})
    row = store.audit("sf")[0]
    assert (row.old_status, row.new_status) == ("qualified", "poc_unqualified")
    assert type(row.new_status) is str
    assert [(k, type(k)) for k in store.status_counts("sf")] == [("poc_unqualified", str)]
    assert store.unqualified_by_owner("sf") == {"005A": 1}


def test_forget_deal_states_drops_what_a_sweep_did_not_refresh(store: StateStore) -> None:
    """States older than the sweep's start go (their deals closed); newer ones, other connections' and,
    when one deal is named, every other deal's stay. The lease fences it like a checkpoint."""
    _run(store, "run-1")
    _run(store, "run-2", connection="hs")
    lease = store.acquire_lease("sf", "run-1", T0, TTL)
    store.checkpoint(
        lease,
        None,
        [],
        [
            _state("old-1", "poc_unqualified"),
            _state("old-2", "qualified"),
            _state("new", "qualified", minute=5),
        ],
        {},
    )
    other = store.acquire_lease("hs", "run-2", T0, TTL)
    store.checkpoint(other, None, [], [_state("old-1", "poc_unqualified")], {})
    sweep_began = T0 + timedelta(minutes=1)
    assert store.forget_deal_states(lease, sweep_began, "old-2") == 1
    assert store.status_counts("sf") == {"poc_unqualified": 1, "qualified": 1}
    assert store.forget_deal_states(lease, sweep_began) == 1
    assert store.status_counts("sf") == {"qualified": 1}
    assert store.unqualified_by_owner("sf") == {}
    assert store.status_counts("hs") == {"poc_unqualified": 1}
    store.release_lease(lease)
    store.acquire_lease("sf", "run-3", T0 + timedelta(minutes=2), TTL)
    with pytest.raises(LeaseLostError):
        store.forget_deal_states(lease, T0 + timedelta(hours=1))
    assert store.status_counts("sf") == {"qualified": 1}
