"""The typed vocabulary: every run status, mode, trigger and ledger state round-trips through the store."""

from __future__ import annotations

import pytest

from worker.state import FINISHED_STATUSES, MODES, RUN_STATUSES, TRIGGERS, LedgerEntry, RunRecord, StateStore
from worker.state.ledger import STATES, LedgerState
from worker.state.model import RunMode, RunStatus, Trigger
from worker.sync.run_model import RunRequest

from .conftest import T0


@pytest.mark.parametrize("status", list(RunStatus), ids=str)
def test_every_run_status_round_trips(store: StateStore, status: RunStatus) -> None:
    """A run stored with each status reads back as that member, equal to its plain string."""
    store.start_run(RunRecord("r1", "sf", Trigger.CLI, RunMode.FULL, T0, status=status))
    got = store.get_run("r1")
    assert got is not None and got.status is status and got.status == status.value


@pytest.mark.parametrize("status", sorted(FINISHED_STATUSES), ids=str)
def test_every_finished_status_is_stored_by_finish_run(store: StateStore, status: str) -> None:
    """finish_run takes each finished status and the run reads back with that member."""
    store.start_run(RunRecord("r1", "sf", "cli", "full", T0))
    store.finish_run("r1", T0, RunStatus(status), {}, 0, None)
    got = store.get_run("r1")
    assert got is not None and got.status is RunStatus(status)


@pytest.mark.parametrize("mode", list(RunMode), ids=str)
@pytest.mark.parametrize("trigger", list(Trigger), ids=str)
def test_every_mode_and_trigger_round_trip(store: StateStore, mode: RunMode, trigger: Trigger) -> None:
    """A run stored with each mode and trigger reads back as those members."""
    store.start_run(RunRecord("r1", "sf", trigger.value, mode.value, T0))
    got = store.get_run("r1")
    assert got is not None and (got.trigger, got.mode) == (trigger, mode)
    assert type(got.trigger) is Trigger and type(got.mode) is RunMode


@pytest.mark.parametrize("state", list(LedgerState), ids=str)
def test_every_ledger_state_round_trips(store: StateStore, state: LedgerState) -> None:
    """A ledger row stored with each state reads back as that member."""
    ledger = store.ledger("sf")
    ledger.record([LedgerEntry("k1", "D1", "t1", state)])
    assert ledger.lookup(["k1"])["k1"].state is state


def test_the_value_sets_are_the_enums() -> None:
    """The exported value sets are exactly the enums' values, so stored strings stay byte-identical."""
    assert {s.value for s in RunStatus} == RUN_STATUSES and {m.value for m in RunMode} == MODES
    assert {t.value for t in Trigger} == TRIGGERS and {s.value for s in LedgerState} == STATES
    assert RUN_STATUSES - {"running", "abandoned"} == FINISHED_STATUSES


def test_a_request_keeps_its_mode_and_trigger_as_members() -> None:
    """RunRequest takes strings or members and keeps members; an unknown mode is refused by name."""
    request = RunRequest("sf", "owner", owner_id="U1", trigger="http")
    assert request.mode is RunMode.OWNER and request.trigger is Trigger.HTTP and request.scope == "U1"
    with pytest.raises(ValueError, match="mode must be one of"):
        RunRequest("sf", "partial")
