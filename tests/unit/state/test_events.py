"""Recorded CRM change events: deduplicated by event id, echoes kept but marking nothing, dirty deals read
oldest first and cleared only when marked before the run that re-assessed them; on both backends."""

from __future__ import annotations

from datetime import timedelta

from worker.state import EventTally, InboundEvent

from .conftest import T0, Target


def _event(event_id: str, deal_id: str, *, echo: bool = False) -> InboundEvent:
    return InboundEvent(event_id, deal_id, T0 - timedelta(seconds=1), echo=echo)


def test_events_mark_their_deals_dirty_once_per_event_id(target: Target) -> None:
    store = target.open()
    try:
        first = store.record_events("hs", [_event("e1", "101"), _event("e2", "102"), _event("e3", "101")], T0)
        assert first == EventTally(received=3, duplicates=0, echoes=0, marked=2)
        again = store.record_events(
            "hs", [_event("e1", "101"), _event("e4", "103")], T0 + timedelta(seconds=5)
        )
        assert again == EventTally(received=2, duplicates=1, echoes=0, marked=1)
        assert store.dirty_deals("hs", 10) == ["101", "102", "103"]
        assert store.dirty_deals("hs", 2) == ["101", "102"]
        assert store.dirty_deals("other", 10) == []
        assert store.event_counts("hs") == {"received": 5, "duplicates": 1, "echoes": 0, "dirty": 3}
    finally:
        store.close()


def test_a_duplicate_within_one_delivery_is_counted_once(target: Target) -> None:
    store = target.open()
    try:
        tally = store.record_events("hs", [_event("e1", "101"), _event("e1", "101")], T0)
        assert tally == EventTally(received=2, duplicates=1, echoes=0, marked=1)
    finally:
        store.close()


def test_an_echo_is_recorded_but_marks_nothing_and_its_resend_is_a_duplicate(target: Target) -> None:
    store = target.open()
    try:
        tally = store.record_events("hs", [_event("e1", "101", echo=True)], T0)
        assert tally == EventTally(received=1, duplicates=0, echoes=1, marked=0)
        assert store.dirty_deals("hs", 10) == []
        resent = store.record_events("hs", [_event("e1", "101", echo=False)], T0 + timedelta(seconds=1))
        assert resent == EventTally(received=1, duplicates=1, echoes=0, marked=0)
        assert store.dirty_deals("hs", 10) == []
        assert store.event_counts("hs") == {"received": 2, "duplicates": 1, "echoes": 1, "dirty": 0}
    finally:
        store.close()


def test_the_oldest_marks_come_first_and_a_new_mark_moves_a_deal_back(target: Target) -> None:
    store = target.open()
    try:
        store.record_events("hs", [_event("e1", "300")], T0)
        store.record_events("hs", [_event("e2", "100")], T0 + timedelta(seconds=1))
        store.record_events("hs", [_event("e3", "200")], T0 + timedelta(seconds=2))
        assert store.dirty_deals("hs", 10) == ["300", "100", "200"]
        store.record_events("hs", [_event("e4", "300")], T0 + timedelta(seconds=3))
        assert store.dirty_deals("hs", 10) == ["100", "200", "300"]
    finally:
        store.close()


def test_clear_dirty_keeps_a_deal_marked_again_after_the_run_started(target: Target) -> None:
    store = target.open()
    try:
        store.record_events("hs", [_event("e1", "101"), _event("e2", "102")], T0)
        run_start = T0 + timedelta(seconds=10)
        store.record_events("hs", [_event("e3", "102")], run_start + timedelta(seconds=1))
        store.record_events("other", [_event("e1", "101")], T0)
        assert store.clear_dirty("hs", ["101", "102", "999"], marked_before=run_start) == 1
        assert store.dirty_deals("hs", 10) == ["102"]
        assert store.dirty_deals("other", 10) == ["101"]
        assert store.clear_dirty("hs", ["102"], marked_before=run_start + timedelta(seconds=2)) == 1
        assert store.dirty_deals("hs", 10) == []
    finally:
        store.close()


def test_clear_dirty_takes_more_ids_than_one_statement_chunk(target: Target) -> None:
    store = target.open()
    try:
        ids = [str(n) for n in range(1200)]
        tally = store.record_events("hs", [_event(f"e{n}", n) for n in ids], T0)
        assert tally.marked == 1200
        assert len(store.dirty_deals("hs", 10_000)) == 1200
        assert store.clear_dirty("hs", ids, marked_before=T0 + timedelta(seconds=1)) == 1200
        assert store.dirty_deals("hs", 10_000) == []
    finally:
        store.close()


def test_event_ids_older_than_the_retention_are_pruned_so_a_late_resend_counts_again(target: Target) -> None:
    store = target.open()
    try:
        store.record_events("hs", [_event("e1", "101")], T0)
        assert store.record_events("hs", [_event("e1", "101")], T0 + timedelta(days=6)).duplicates == 1
        late = store.record_events("hs", [_event("e1", "101")], T0 + timedelta(days=7, seconds=1))
        assert late == EventTally(received=1, duplicates=0, echoes=0, marked=1)
    finally:
        store.close()
