"""Recorded CRM change events: deduplicated by event id, echoes kept but marking nothing, dirty deals read
oldest first and cleared only when marked before the run that re-assessed them; on both backends."""

from __future__ import annotations

from datetime import timedelta

from worker.state import EventTally, InboundEvent, LagStats

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


def test_clearing_a_mark_records_its_lag_from_the_earliest_event_behind_it(target: Target) -> None:
    """Two edits of one deal (the later one delivered first) lag from the earlier; an echo adds no lag;
    a mark made again during the run survives it and is not counted until the run that clears it."""
    store = target.open()
    try:
        early, late = T0 - timedelta(seconds=3), T0 - timedelta(seconds=1)
        store.record_events("sf", [InboundEvent("b", "101", late), InboundEvent("c", "102", late)], T0)
        store.record_events("sf", [InboundEvent("a", "101", early)], T0)
        store.record_events("sf", [InboundEvent("e", "103", early, echo=True)], T0)
        started = T0 + timedelta(seconds=1)
        store.record_events("sf", [InboundEvent("d", "102", T0)], started + timedelta(seconds=1))
        done = T0 + timedelta(seconds=2)
        assert store.clear_dirty("sf", ["101", "102"], marked_before=started, reassessed_at=done) == 1
        stats = store.lag_stats("sf", T0)
        assert (stats.count, stats.p50, stats.max) == (1, 5.0, 5.0)
        buckets, total = store.lag_histogram("sf")
        assert [bound for bound, count in buckets if count == 0] == ["0.5", "1", "2", "3"]
        assert [bound for bound, count in buckets if count == 1] == [
            "5",
            "10",
            "30",
            "60",
            "300",
            "3600",
            "+Inf",
        ]
        assert total == 5.0
        assert store.dirty_deals("sf", 10) == ["102"]
        assert store.lag_stats("other", T0).count == 0
        assert store.lag_histogram("other")[0][-1] == ("+Inf", 0)
    finally:
        store.close()


def test_a_clock_ahead_of_ours_counts_as_no_lag_and_no_time_records_none(target: Target) -> None:
    store = target.open()
    try:
        store.record_events("sf", [InboundEvent("a", "101", T0 + timedelta(seconds=30))], T0)
        store.record_events("sf", [InboundEvent("b", "102", T0)], T0)
        later = T0 + timedelta(seconds=1)
        store.clear_dirty("sf", ["101"], marked_before=later, reassessed_at=later)
        store.clear_dirty("sf", ["102"], marked_before=later)
        assert store.lag_stats("sf", T0).as_json() == {
            "count": 1, "p50_s": 0.0, "p95_s": 0.0, "p99_s": 0.0, "max_s": 0.0
        }  # fmt: skip
    finally:
        store.close()


def test_a_stream_position_is_saved_replaced_and_forgotten(target: Target) -> None:
    store = target.open()
    try:
        assert store.stream_position("sf") is None
        store.save_stream_position("sf", "00000000000000a1", T0 - timedelta(seconds=2), T0)
        store.save_stream_position("sf", "00000000000000b2", None, T0 + timedelta(seconds=1))
        held = store.stream_position("sf")
        assert held is not None
        assert (held.position, held.event_at, held.saved_at) == (
            "00000000000000b2",
            None,
            T0 + timedelta(seconds=1),
        )
        assert store.stream_position("hs") is None
        assert store.forget_stream_position("sf") is True
        assert store.stream_position("sf") is None
        assert store.forget_stream_position("sf") is False
    finally:
        store.close()


def test_lag_quantiles_are_nearest_rank() -> None:
    stats = LagStats.of([float(n) for n in range(100, 0, -1)])
    assert (stats.count, stats.p50, stats.p95, stats.p99, stats.max) == (100, 50.0, 95.0, 99.0, 100.0)
    assert LagStats.of([]).as_json() == {
        "count": 0,
        "p50_s": None,
        "p95_s": None,
        "p99_s": None,
        "max_s": None,
    }
