"""`bant-sync status` shows snoozes: the snoozed count among the statuses, the current snoozes (deal, owner,
until, who, why; the first ten and how many more) and the snoozes refused in the last seven days, from a
real state store (SQLite, and PostgreSQL where one is reachable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.model import Owner
from tests.unit.state.conftest import BACKENDS, Target, pg_schema  # noqa: F401  (pg_schema: a fixture)
from worker.cli import status as status_cmd
from worker.report.snoozes import note_reason, read_snoozes, snoozed_with_reasons, why_kind
from worker.state import DealState, InboundEvent, RunRecord, StateStore, StatusChange

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
TTL = timedelta(minutes=10)
ANN = Owner("005A", "Ann Lee", "ann@x.io", None, True)
BOB = Owner("005B", "Bob Roy", "bob@x.io", None, True)
REASON = "Customer budget cycle opens on 1 January"
POC = "POCs cannot be snoozed — every criterion is required before a POC goes ahead"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """A fresh store on each backend (as tests/unit/state's `store`)."""
    if request.param == "sqlite":
        where = Target("sqlite", f"sqlite:///{tmp_path}/state.db")
    else:
        url, schema = request.getfixturevalue("pg_schema")
        where = Target("postgresql", url, schema)
    opened = where.open()
    try:
        yield opened
    finally:
        opened.close()


def _snoozed(deal_id: str, owner: str, until: date, name: str | None = None) -> DealState:
    return DealState(
        deal_id,
        owner,
        "snoozed",
        ("budget",),
        NOW,
        None,
        name or f"Deal {deal_id}",
        until,
        until - timedelta(5),
    )


def _save(store: StateStore, changes: list[StatusChange], states: list[DealState]) -> None:
    store.start_run(RunRecord("r1", "sf", "cli", "incremental", NOW - timedelta(days=30)))
    lease = store.acquire_lease("sf", "r1", NOW - timedelta(days=30), TTL)
    store.checkpoint(lease, None, changes, states, {})
    store.release_lease(lease)


def _snooze(deal_id: str, until: date, by: str, at: datetime, reason: str = REASON) -> StatusChange:
    note = f"Snoozed until {until.isoformat()}: {reason}"
    return StatusChange(deal_id, "needs_qualification", "snoozed", ("budget",), at, actor=by, note=note)


def _refused(deal_id: str, why: str, at: datetime) -> StatusChange:
    return StatusChange(
        deal_id,
        "needs_qualification",
        "needs_qualification",
        ("budget",),
        at,
        actor="005B",
        note=f"Snooze ignored: {why}",
    )


def _seed(store: StateStore, snoozes: int = 2) -> None:
    """`snoozes` snoozed deals of Ann's (the first re-snoozed with a new reason, by Bob), one flagged deal
    with a snooze refused yesterday, one refused 8 days ago, and a qualified deal."""
    store.replace_owners("sf", [ANN, BOB], NOW)
    changes = [_snooze("S00", date(2026, 12, 20), "005A", NOW - timedelta(days=9), "an older reason here")]
    states = []
    for i in range(snoozes):
        deal_id, until = f"S{i:02d}", date(2026, 12, 10) + timedelta(days=i)
        changes.append(_snooze(deal_id, until, "005B" if i == 0 else "005A", NOW - timedelta(days=3)))
        states.append(_snoozed(deal_id, "005A", until, "Acme renewal" if i == 0 else None))
    changes.append(_refused("F1", POC, NOW - timedelta(days=1)))
    changes.append(
        _refused("F2", "a snooze needs a reason of at least 10 characters", NOW - timedelta(days=8))
    )
    states.append(DealState("F1", "005B", "poc_unqualified", ("budget",), NOW, None, "Big POC"))
    states.append(DealState("F2", "005B", "needs_qualification", ("need",), NOW, None, "Small deal"))
    states.append(DealState("Q1", "005A", "qualified", (), NOW, None, "Done deal"))
    _save(store, changes, states)


def test_read_snoozes_names_who_snoozed_each_deal_why_and_until_when(store: StateStore) -> None:
    """The latest snoozing audit row of each snoozed deal gives who and why (the re-snooze's, not the
    first); the state gives until when; refusals count only within the window."""
    _seed(store)
    found = read_snoozes(store, "sf", NOW, days=7)
    assert [(s.deal_id, s.name, s.owner, s.until, s.by, s.reason) for s in found.current] == [
        ("S00", "Acme renewal", "Ann Lee", date(2026, 12, 10), "Bob Roy", REASON),
        ("S01", "Deal S01", "Ann Lee", date(2026, 12, 11), "Ann Lee", REASON),
    ]
    assert [(e.deal_id, e.name, e.owner, e.by, e.why) for e in found.refused] == [
        ("F1", "Big POC", "Bob Roy", "Bob Roy", POC)
    ]
    assert len(read_snoozes(store, "sf", NOW, days=10).refused) == 2
    states, reasons = snoozed_with_reasons(store, "sf")
    assert [s.deal_id for s in states] == ["S00", "S01"] and reasons == {"S00": REASON, "S01": REASON}


def test_status_json_lists_snoozes_and_counts_refusals(store: StateStore) -> None:
    _seed(store)
    report = status_cmd.connection_status(store, "sf", runs=1)
    assert report["deals_by_status"]["snoozed"] == 2
    snoozes = report["snoozes"]
    assert snoozes["snoozed"] == 2 and snoozes["more"] == 0 and snoozes["refused_last_7_days"] == 1
    assert snoozes["shown"][0] == {
        "deal_id": "S00",
        "name": "Acme renewal",
        "owner_id": "005A",
        "owner": "Ann Lee",
        "until": "2026-12-10",
        "snoozed_by": "Bob Roy",
        "reason": REASON,
        "snoozed_at": (NOW - timedelta(days=3)).isoformat(),
    }
    json.dumps(report)


def test_status_text_shows_snoozed_with_the_statuses_and_the_first_ten_snoozes(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """The statuses in their own order (snoozed last); a `snoozed` line with the refusals; ten snoozes,
    the soonest end first, and how many more."""
    _seed(store, snoozes=12)
    status_cmd._print_status(status_cmd.connection_status(store, "sf", runs=0))
    out = capsys.readouterr().out
    deals = next(line for line in out.splitlines() if line.startswith("  deals"))
    assert deals.split(None, 1)[1] == "qualified 1, needs_qualification 1, poc_unqualified 1, snoozed 12"
    assert "  snoozed       12 deals now; 1 snooze refused in the last 7 days" in out
    assert f"    Acme renewal (S00)  owner Ann Lee  until 2026-12-10 by Bob Roy: {REASON}" in out
    shown = [line for line in out.splitlines() if line.startswith("    ") and "until" in line]
    assert len(shown) == 10 and "S09" in shown[-1]
    assert "    …and 2 more" in out


def test_status_without_snoozes_says_nothing_about_them(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.replace_owners("sf", [ANN], NOW)
    _save(store, [], [DealState("Q1", "005A", "qualified", (), NOW)])
    status_cmd._print_status(status_cmd.connection_status(store, "sf", runs=0))
    assert "snooze" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        (f"Snoozed until 2026-12-20: {REASON}", (date(2026, 12, 20), REASON)),
        ("Snoozed until 2026-12-20: a: b", (date(2026, 12, 20), "a: b")),
        ("Snooze ended on 2026-12-20", (None, "")),
        (None, (None, "")),
    ],
)
def test_note_reason(note: str | None, expected: tuple[date | None, str]) -> None:
    assert note_reason(note) == expected


def test_why_kind_drops_the_particulars() -> None:
    assert why_kind("a snooze lasts at most 30 days: set a date on or before 2026-12-30") == (
        "a snooze lasts at most 30 days"
    )
    assert why_kind(POC) == POC


def test_status_shows_webhook_events_only_once_there_are_some(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """An `events` line (received, duplicates, echoes, deals waiting) appears once a connection has
    received events; `--json` always carries the counts."""
    status_cmd._print_status(status_cmd.connection_status(store, "sf", runs=0))
    assert "events" not in capsys.readouterr().out
    events = [InboundEvent("e1", "D1", NOW), InboundEvent("e2", "D2", NOW, echo=True)]
    store.record_events("sf", events, NOW)
    store.record_events("sf", events[:1], NOW)
    report = status_cmd.connection_status(store, "sf", runs=0)
    assert report["events"] == {"received": 3, "duplicates": 1, "echoes": 1, "dirty": 1}
    status_cmd._print_status(report)
    out = capsys.readouterr().out
    assert "  events        3 received, 1 duplicate, 1 echo; 1 deal waiting for re-assessment\n" in out


def test_status_shows_the_event_lag_of_the_last_hour_and_where_the_stream_resumes(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once event runs re-assessed deals, an `event lag` line gives the quantiles of the last hour; once a
    change stream saved its position, a `stream` line says where it resumes (`--json`: event_lag, stream)."""
    status_cmd._print_status(status_cmd.connection_status(store, "sf", runs=0))
    out = capsys.readouterr().out
    assert "event lag" not in out and "stream" not in out
    now = datetime.now(UTC)
    store.record_events("sf", [InboundEvent("e1", "D1", now - timedelta(seconds=3))], now)
    store.clear_dirty("sf", ["D1"], marked_before=now + timedelta(seconds=1), reassessed_at=now)
    store.save_stream_position("sf", "00000000000000ff", now - timedelta(seconds=3), now)
    report = status_cmd.connection_status(store, "sf", runs=0)
    assert report["event_lag"] == {"count": 1, "p50_s": 3.0, "p95_s": 3.0, "p99_s": 3.0, "max_s": 3.0}
    assert report["stream"]["position"] == "00000000000000ff"
    status_cmd._print_status(report)
    out = capsys.readouterr().out
    assert (
        "  event lag     p50 3.0 s, p95 3.0 s, p99 3.0 s, max 3.0 s over the last hour (1 re-assessment)\n"
        in out
    )
    assert "  stream        resumes after 00000000000000ff, event of " in out
