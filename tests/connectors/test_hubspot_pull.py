"""Search sweeps: every record seen exactly once, no request past result 10,000, ties and bounds handled."""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime, timedelta

import pytest

from connectors.errors import SchemaDriftError
from connectors.hubspot.mapping import format_datetime, parse_datetime
from connectors.hubspot.pull import Record, Result, Sweeper, Window, require_properties, search_body

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CAP = 10_000
PAGE = 200


class FakeSearch:
    """HubSpot search semantics over a list: filters, one sort, first page of 200 (the sweep never pages)."""

    def __init__(self, records: list[tuple[str, datetime]]) -> None:
        self.records = records
        self.requests: list[Window] = []
        self._sorted: tuple[int, list[tuple[datetime, int, str]]] = (0, [])

    def _by_modified(self) -> list[tuple[datetime, int, str]]:
        if self._sorted[0] != id(self.records):
            self._sorted = (id(self.records), sorted((m, int(i), i) for i, m in self.records))
        return self._sorted[1]

    def __call__(self, window: Window) -> Result:
        self.requests.append(window)
        rows = self.records
        if window.at is None:
            ordered = self._by_modified()
            start = bisect.bisect_left(ordered, (window.since, -1, "")) if window.since else 0
            rows = []
            for m, _num, i in ordered[start:]:
                if window.until is not None and m > window.until:
                    break
                if i in window.exclude:
                    continue
                rows.append((i, m))
                if len(rows) > PAGE:
                    break
        elif window.at is not None:
            rows = [r for r in rows if r[1] == window.at]
            if window.id_after is not None:
                rows = [r for r in rows if int(r[0]) > int(window.id_after)]
            rows = sorted(rows, key=lambda r: int(r[0]))
            if window.until is not None:
                rows = [r for r in rows if r[1] <= window.until]
        page = rows[:PAGE]
        records = tuple(Record(i, {"hs_lastmodifieddate": format_datetime(m)}) for i, m in page)
        return Result(records, len(rows) > PAGE)


def _modified(record: Record) -> datetime | None:
    return parse_datetime(record.properties["hs_lastmodifieddate"])


def _sweep(records: list[tuple[str, datetime]], since: datetime | None = None, until: datetime | None = None):
    fake = FakeSearch(records)
    sweeper = Sweeper(fake, PAGE, _modified)
    pages = list(sweeper.sweep(since, until))
    return fake, sweeper, [r.id for page in pages for r in page], pages


def _dataset(n: int, spread_seconds: float, seed: int = 7) -> list[tuple[str, datetime]]:
    rng = random.Random(seed)
    return [
        (str(100 + i), T0 + timedelta(milliseconds=int(rng.uniform(0, spread_seconds) * 1000)))
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("n", "spread"),
    [
        pytest.param(25_000, 3600, id="25k-in-one-hour"),
        pytest.param(25_000, 5, id="25k-in-five-seconds-heavy-ties"),
        pytest.param(10_000, 3600, id="exactly-10k"),
        pytest.param(199, 60, id="less-than-a-page"),
    ],
)
def test_every_record_seen_exactly_once_without_passing_the_cap(n: int, spread: float) -> None:
    """A sweep returns each matching record once, oldest first, never asking for a result past 10,000."""
    records = _dataset(n, spread)
    _fake, _sweeper, ids, pages = _sweep(records)
    assert len(ids) == n
    assert len(set(ids)) == n
    assert all(len(page) <= PAGE for page in pages)
    stamps = [_modified(r) for page in pages for r in page]
    assert stamps == sorted(stamps)  # type: ignore[type-var]


def test_call_count_stays_within_budget_for_25k() -> None:
    """Re-anchoring costs little: 25,000 records need at most 1.1x ceil(N/200) searches."""
    _fake, sweeper, _ids, _pages = _sweep(_dataset(25_000, 3600))
    assert sweeper.requests <= 1.1 * (25_000 / PAGE)


def test_more_than_10k_records_sharing_one_timestamp_are_swept_by_id() -> None:
    """A bulk import stamps 15,000 deals with one time: the tie sweep walks them by id, all seen once."""
    records = [(str(1000 + i), T0) for i in range(15_000)] + [
        (str(50_000 + i), T0 + timedelta(seconds=1 + i)) for i in range(300)
    ]
    fake, _sweeper, ids, _pages = _sweep(records)
    assert sorted(ids) == sorted(r[0] for r in records)
    assert len(ids) == len(set(ids))
    assert any(w.at == T0 and w.id_after is not None for w in fake.requests)


def test_upper_bound_excludes_records_changed_after_the_sweep_started() -> None:
    """Records stamped after `until` (e.g. our own write-backs) are left for the next run."""
    records = _dataset(500, 100)
    until = T0 + timedelta(seconds=50)
    _fake, _sweeper, ids, _pages = _sweep(records, until=until)
    assert sorted(ids) == sorted(i for i, m in records if m <= until)


def test_lower_bound_is_inclusive() -> None:
    """A record stamped exactly at `since` is included (GTE), so a cursor never skips a tie."""
    records = [("1", T0), ("2", T0 + timedelta(seconds=1)), ("3", T0 - timedelta(milliseconds=1))]
    _fake, _sweeper, ids, _pages = _sweep(records, since=T0)
    assert ids == ["1", "2"]


def test_search_body_shape() -> None:
    """The request carries the open-deal filter, GTE/LTE window, ascending sort, 200 limit and `after`."""
    base = [{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]
    body = search_body(Window(since=T0, until=T0 + timedelta(hours=1)), base, ["a", "b"], 200, "mod")
    filters = body["filterGroups"][0]["filters"]
    assert filters[0] == base[0]
    assert {"propertyName": "mod", "operator": "GTE", "value": str(int(T0.timestamp() * 1000))} in filters
    assert any(f["operator"] == "LTE" for f in filters)
    assert body["sorts"] == [{"propertyName": "mod", "direction": "ASCENDING"}]
    assert body["limit"] == 200
    assert body["after"] == "0", "every window asks for its first page (the spec marks `after` required)"
    assert body["properties"] == ["a", "b"]


def test_tie_window_sorts_by_object_id() -> None:
    """A tie window filters modified EQ the instant and hs_object_id GT the last id, sorted by id."""
    body = search_body(Window(at=T0, id_after="99"), [], ["x"], 200, "mod")
    filters = body["filterGroups"][0]["filters"]
    assert {"propertyName": "mod", "operator": "EQ", "value": str(int(T0.timestamp() * 1000))} in filters
    assert {"propertyName": "hs_object_id", "operator": "GT", "value": "99"} in filters
    assert body["sorts"] == [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    assert body["after"] == "0", "every window asks for its first page (the spec marks `after` required)"


def test_records_leaving_the_window_mid_sweep_skip_nothing() -> None:
    """Write-backs move each delivered deal past `until` while the sweep runs; no other record is skipped
    (offset paging would skip a page for every page written)."""
    records = _dataset(3_000, 3600)
    fake = FakeSearch(list(records))
    until = T0 + timedelta(hours=2)
    sweeper = Sweeper(fake, PAGE, _modified)
    seen: list[str] = []
    for page in sweeper.sweep(None, until):
        seen.extend(r.id for r in page)
        written = {r.id for r in page}
        fake.records = [(i, m if i not in written else until + timedelta(minutes=1)) for i, m in fake.records]
    assert sorted(seen) == sorted(i for i, _ in records)
    assert len(seen) == len(set(seen))


MAPPING = {"budget": "bant_budget", "need": "bant_need", "modified_at": "hs_lastmodifieddate"}
REQUESTED = sorted(set(MAPPING.values()))


@pytest.mark.parametrize(
    ("results", "missing"),
    [
        ([{"bant_budget": None, "bant_need": None, "hs_lastmodifieddate": "1"}], ()),
        ([{"bant_budget": "10k", "hs_lastmodifieddate": "1"}], ("bant_need",)),
        (
            [{"bant_budget": "", "bant_need": "x", "hs_lastmodifieddate": "1"}, {"hs_lastmodifieddate": "2"}],
            ("bant_budget", "bant_need"),
        ),
        ([], ()),
    ],
    ids=["null-is-a-value", "one-missing", "missing-in-a-later-result", "no-results"],
)
def test_require_properties_names_every_requested_property_a_result_lacks(
    results: list[dict[str, str | None]], missing: tuple[str, ...]
) -> None:
    """A requested property absent from any result's properties is drift (named, sorted); one answered as
    null or empty is a value."""
    records = [Record(str(n), props) for n, props in enumerate(results)]
    if not missing:
        require_properties(records, REQUESTED, MAPPING)
        return
    with pytest.raises(SchemaDriftError) as caught:
        require_properties(records, REQUESTED, MAPPING)
    assert caught.value.fields == missing
    message = str(caught.value)
    assert all(f"{name} (" in message for name in missing)
    assert "bant-sync setup" in message and "property mapping" in message and "\n" not in message
