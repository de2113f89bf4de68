"""One page of deals against the store: their states, the status the audit log ends with, the audit source,
and the qualify-out clock (flag_clocks), including stores written before the clock was kept."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from worker.state import DealState, Lease, RunRecord, StateStore, StatusChange
from worker.state.engine import Database

from .conftest import T0, Target

TTL = timedelta(minutes=10)
DAY = timedelta(days=1)


def _lease(store: StateStore, run_id: str = "run-1", connection: str = "sf") -> Lease:
    store.start_run(RunRecord(run_id, connection, "cli", "incremental", T0))
    return store.acquire_lease(connection, run_id, T0, TTL)


def _change(deal_id: str, old: str | None, new: str, days: int = 0, source: str = "run") -> StatusChange:
    return StatusChange(deal_id, old, new, (), T0 + days * DAY, source)


def test_deal_states_for_returns_the_page_with_its_flagged_since(store: StateStore) -> None:
    """deal_states_for gives the stored state (flagged_since included) of the asked deals of one connection;
    unknown ids are absent and a later checkpoint's flagged_since replaces the earlier one."""
    lease = _lease(store)
    states = [
        DealState("A", "005", "needs_qualification", ("budget",), T0, date(2025, 2, 1)),
        DealState("B", None, "qualified", (), T0),
    ]
    store.checkpoint(lease, None, [], states, {})
    other = _lease(store, "run-h", "hs")
    store.checkpoint(other, None, [], [DealState("A", "9", "qualified", (), T0)], {})
    assert store.deal_states_for("sf", ["A", "B", "nope"]) == {"A": states[0], "B": states[1]}
    later = DealState("A", "005", "qualify_out", ("budget",), T0 + DAY, date(2025, 1, 2))
    store.checkpoint(lease, None, [], [later], {})
    assert store.deal_states_for("sf", ["A"]) == {"A": later}
    assert store.deal_states_for("sf", []) == {}


def test_page_queries_span_more_ids_than_one_in_chunk(store: StateStore) -> None:
    """Asking for more ids than one IN (...) holds (5,000) still finds every deal."""
    lease = _lease(store)
    ids = [f"D{i:05d}" for i in range(5_003)]
    store.checkpoint(
        lease,
        None,
        [_change(d, None, "needs_qualification") for d in ids[-3:]],
        [DealState(d, None, "needs_qualification", (), T0, date(2025, 3, 1)) for d in ids[-3:]],
        {},
    )
    assert set(store.deal_states_for("sf", ids)) == set(ids[-3:])
    assert set(store.last_audited_status("sf", ids)) == set(ids[-3:])
    assert set(store.flag_clocks("sf", ids)) == set(ids[-3:])


def test_last_audited_status_is_the_latest_rows_new_status(store: StateStore) -> None:
    """Each deal's latest audit row (by seq, across runs) names its last audited status; deals never
    audited and other connections' rows are left out."""
    lease = _lease(store)
    store.checkpoint(
        lease,
        None,
        [_change("A", None, "needs_qualification"), _change("B", None, "qualified")],
        [],
        {},
    )
    store.checkpoint(lease, None, [_change("A", "needs_qualification", "qualified", days=-5)], [], {})
    other = _lease(store, "run-h", "hs")
    store.checkpoint(other, None, [_change("B", None, "poc_unqualified")], [], {})
    assert store.last_audited_status("sf", ["A", "B", "C"]) == {"A": "qualified", "B": "qualified"}
    assert store.last_audited_status("hs", ["A", "B"]) == {"B": "poc_unqualified"}


def test_audit_rows_keep_their_source(store: StateStore) -> None:
    """A StatusChange's source ("run" by default, "observed" when given) comes back on its AuditRow."""
    lease = _lease(store)
    store.checkpoint(
        lease,
        None,
        [_change("A", None, "qualified"), _change("A", "qualified", "poc_unqualified", source="observed")],
        [],
        {},
    )
    assert [(r.new_status, r.source) for r in store.audit("sf")] == [
        ("poc_unqualified", "observed"),
        ("qualified", "run"),
    ]


def test_flag_clocks_prefer_the_stored_flagged_since(store: StateStore) -> None:
    """An unqualified deal's stored flagged_since is its clock, whatever the audit log says; a deal whose
    state is not unqualified has no clock even when its audit log ends unqualified."""
    lease = _lease(store)
    store.checkpoint(
        lease,
        None,
        [_change("A", None, "needs_qualification", days=-40), _change("B", None, "poc_unqualified")],
        [
            DealState("A", None, "poc_unqualified", (), T0, date(2025, 2, 20)),
            DealState("B", None, "qualified", (), T0),
        ],
        {},
    )
    assert store.flag_clocks("sf", ["A", "B"]) == {"A": date(2025, 2, 20)}


CHAINS = [
    pytest.param(
        [(None, "needs_qualification", -30)],
        -30,
        id="flagged-when-first-seen",
    ),
    pytest.param(
        [(None, "qualified", -50), ("qualified", "needs_qualification", -20)],
        -20,
        id="flagged-after-being-qualified",
    ),
    pytest.param(
        [
            (None, "needs_qualification", -60),
            ("needs_qualification", "qualified", -45),
            ("qualified", "poc_unqualified", -25),
            ("poc_unqualified", "qualify_out", -1),
        ],
        -25,
        id="moves-between-unqualified-statuses-keep-the-stretch",
    ),
    pytest.param(
        [(None, "not_evaluated", -9), ("not_evaluated", "needs_qualification", -3)],
        -3,
        id="from-not-evaluated",
    ),
    pytest.param(
        [("needs_qualification", "poc_unqualified", -12), ("poc_unqualified", "qualify_out", -2)],
        -12,
        id="log-begins-mid-stretch-oldest-row",
    ),
    pytest.param(
        [(None, "needs_qualification", -30), ("needs_qualification", "qualified", -2)],
        None,
        id="qualified-now-no-clock",
    ),
    pytest.param(
        [(None, "qualified", -30), ("needs_qualification", "poc_unqualified", -4)],
        -4,
        id="broken-chain-stops-at-the-gap",
    ),
    pytest.param([], None, id="never-audited"),
]


@pytest.mark.parametrize(("chain", "expected"), CHAINS)
def test_flag_clocks_derived_from_the_audit_log(
    store: StateStore, chain: list[tuple[str | None, str, int]], expected: int | None
) -> None:
    """Without a stored flagged_since (no state, or a state with NULL) the clock is the date of the latest
    move into an unqualified status from one that is not, when the log ends unqualified."""
    lease = _lease(store)
    changes = [_change("A", old, new, days) for old, new, days in chain]
    store.checkpoint(lease, None, changes, [], {})
    want = {} if expected is None else {"A": (T0 + expected * DAY).date()}
    assert store.flag_clocks("sf", ["A"]) == want
    if chain and chain[-1][1] != "qualified":
        store.checkpoint(lease, None, [], [DealState("A", None, chain[-1][1], (), T0)], {})
        assert store.flag_clocks("sf", ["A"]) == want


def test_flag_clocks_on_a_store_written_by_version_1(target: Target) -> None:
    """A store migrated from version 1 (audit rows without source, deal states without flagged_since) reads
    its old rows as run rows and derives each unqualified deal's clock from its audit log."""
    target.open().close()
    db = Database.open(target.url, schema=target.schema)
    try:
        with db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_log "
                    "(connection, run_id, deal_id, old_status, new_status, missing, at) "
                    "VALUES ('sf', 'old', 'A', NULL, 'qualified', '[]', :a), "
                    "('sf', 'old', 'A', 'qualified', 'needs_qualification', '[\"need\"]', :b)"
                ),
                {"a": (T0 - 40 * DAY).replace(tzinfo=None), "b": (T0 - 10 * DAY).replace(tzinfo=None)},
            )
            conn.execute(
                text(
                    "INSERT INTO deal_states (connection, deal_id, owner_id, status, missing, updated_at) "
                    "VALUES ('sf', 'A', NULL, 'needs_qualification', '[\"need\"]', :at)"
                ),
                {"at": T0.replace(tzinfo=None)},
            )
    finally:
        db.close()
    store = target.open()
    try:
        assert [r.source for r in store.audit("sf")] == ["run", "run"]
        assert store.deal_states_for("sf", ["A"])["A"].flagged_since is None
        assert store.flag_clocks("sf", ["A"]) == {"A": (T0 - 10 * DAY).date()}
    finally:
        store.close()
