"""HubSpot search's sorted indexes answer exactly what the plain scan answers.

A search sorted by a property other than `hs_lastmodifieddate` (close date, amount, name), or sorted by
`hs_object_id` with range filters on such a property (the closed-deal sweep's tie pages), is served from a
kept index of the fixed filters' matches ordered by that property (sandbox.hubspot.search). These tests run
randomized bodies through `run_search` and through `scan_search` (every record through the filters, then a
stable sort) and compare totals, rows (ids and versions, in order) and `paging.next.after`, with writes,
creations and archives between the searches; and check that a closed-deal sweep by close date does not run
the filters over the whole store for every page. A keyset walk by id (the outcome report's closed-deal
read) is served by an id index, compared with the scan the same way.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.hubspot.pull import Record, Result, Sweeper, Window, search_body
from sandbox.clock import SandboxClock
from sandbox.hubspot import search as search_module
from sandbox.hubspot.filters import Predicate
from sandbox.hubspot.properties import epoch_ms
from sandbox.hubspot.search import SearchPage, run_search, scan_search
from sandbox.hubspot.state import HubSpotState
from sandbox.hubspot.store import ObjectStore

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STAGES = ("appointmentscheduled", "contractsent", "closedwon", "closedlost")
DAY = timedelta(days=1)
DATES = [START - DAY * k for k in range(8)]


def _close(rng: random.Random) -> str:
    """A close date: mostly one of a few midnights (many ties), sometimes a time of day or none ("")."""
    roll = rng.random()
    if roll < 0.12:
        return ""
    moment = rng.choice(DATES).replace(hour=0)
    if roll < 0.25:
        moment += timedelta(milliseconds=rng.randrange(86_400_000))
    return str(epoch_ms(moment)) if rng.random() < 0.3 else moment.isoformat()


def _deal(rng: random.Random) -> dict[str, str]:
    return {
        "dealname": rng.choice(["Acme", "acme", "Birch", "Cobalt", "delta", "Échelle"])
        + rng.choice(["", " 2"]),
        "closedate": _close(rng),
        "dealstage": rng.choice(STAGES),
        "amount": rng.choice(["", "0", "-0", "10", "10.0", "250.5", "1e3", str(rng.randrange(100))]),
    }


def _state(rng: random.Random, deals: int) -> HubSpotState:
    state = HubSpotState(SandboxClock(START))
    for _ in range(deals):
        state.create("deals", _deal(rng))
    return state


def _ms(moment: datetime) -> str:
    return str(epoch_ms(moment))


def _bound(rng: random.Random, prop: str) -> str:
    if prop == "closedate":
        moment = rng.choice(DATES).replace(hour=0) + rng.choice([timedelta(0), timedelta(hours=7)])
        return _ms(moment) if rng.random() < 0.5 else moment.isoformat().replace("+00:00", "Z")
    if prop == "amount":
        return rng.choice(["0", "10", "10.0", "99", "250.5", "-5", "1000"])
    return rng.choice(["acme", "ACME", "birch", "c", "delta 2", "z"])


def _body(rng: random.Random, store: ObjectStore) -> dict[str, Any]:
    """A random body of the shapes the sorted index serves, and a few it leaves to the other paths."""
    prop = rng.choice(["closedate", "closedate", "closedate", "amount", "dealname"])
    filters: list[dict[str, Any]] = []
    base = rng.choice(["closed", "closed", "none", "stage", "amount"])
    if base == "closed":
        filters.append(
            {"propertyName": "hs_is_closed", "operator": "EQ", "value": rng.choice(["true", True])}
        )
    elif base == "stage":
        filters.append(
            {"propertyName": "dealstage", "operator": "IN", "values": ["closedwon", "contractsent"]}
        )
    elif base == "amount" and prop != "amount":
        filters.append({"propertyName": "amount", "operator": "GTE", "value": "10"})
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
        op = rng.choice(["GT", "GTE", "GTE", "LT", "LTE", "LTE", "EQ"])
        filters.append({"propertyName": prop, "operator": op, "value": _bound(rng, prop)})
    ids = [obj.num for obj in store.objects.values()]
    if ids and rng.random() < 0.4:
        seen = rng.sample(ids, min(len(ids), rng.randrange(1, 30)))
        values: list[Any] = [str(n) for n in seen] + rng.choice([[], ["1"], [f"{seen[0]}.0"], [seen[-1]]])
        filters.append({"propertyName": "hs_object_id", "operator": "NOT_IN", "values": values})
    if ids and rng.random() < 0.2:
        filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": str(rng.choice(ids))})
    if rng.random() < 0.1:
        filters.append({"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": _ms(START)})
    if rng.random() < 0.05:
        filters.append({"propertyName": prop, "operator": "NEQ", "value": _bound(rng, prop)})
    sort = rng.choice([prop, prop, prop, "hs_object_id", None])
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters[:6]}] if filters or rng.random() < 0.5 else []
    }
    if sort is not None:
        direction = rng.choice(["ASCENDING", "ASCENDING", "DESCENDING"])
        body["sorts"] = (
            [f"-{sort}" if direction == "DESCENDING" else sort]
            if rng.random() < 0.2
            else [{"propertyName": sort, "direction": direction}]
        )
    if rng.random() < 0.1:
        body["query"] = rng.choice(["acme", "birch"])
    body["limit"] = rng.choice([1, 2, 5, 10, 50, 200])
    body["after"] = rng.choice([0, 0, 0, 1, 3, 10, 40, 150])
    return body


def _answer(page: SearchPage) -> tuple[int, list[tuple[str, int, bool]], int | None]:
    """What the API renders: the total, each row's record, version and properties, and the next offset."""
    rows = [(obj.id, stamp, props is obj.properties) for obj, props, stamp in page.rows]
    return page.total, rows, page.next_after


def _write(rng: random.Random, state: HubSpotState) -> None:
    store = state.stores["deals"]
    ids = list(store.objects)
    roll = rng.random()
    if roll < 0.15 or not ids:
        state.create("deals", _deal(rng))
    elif roll < 0.25:
        state.archive("deals", rng.choice(ids))
    else:
        change = _deal(rng)
        picked = rng.sample(sorted(change), rng.randrange(1, 4))
        state.update("deals", rng.choice(ids), {name: change[name] for name in picked})


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each search was answered from a sorted index (so the comparisons are not all vacuous)."""
    answered: list[bool] = []
    sorted_search = search_module._sorted_search

    def counting(*args: Any, **kwargs: Any) -> SearchPage | None:
        page = sorted_search(*args, **kwargs)
        answered.append(page is not None)
        return page

    monkeypatch.setattr(search_module, "_sorted_search", counting)
    return answered


@pytest.mark.parametrize("seed", range(6))
def test_sorted_searches_answer_what_the_scan_answers_with_writes_between(
    seed: int, served: list[bool]
) -> None:
    rng = random.Random(seed)
    state = _state(rng, 250)
    store = state.stores["deals"]
    bodies = [_body(rng, store) for _ in range(12)]
    now = epoch_ms(START)
    for step in range(400):
        body = rng.choice(bodies) if rng.random() < 0.7 else _body(rng, store)
        body = {**body, "after": rng.choice([0, 0, 1, 7, 30, 120])}
        assert _answer(run_search(store, body, 0, now)) == _answer(scan_search(store, body, 0, now)), (
            f"seed {seed} step {step}: {body}"
        )
        for _ in range(rng.choice([0, 0, 0, 1, 1, 3, 20])):
            _write(rng, state)
    assert sum(served) > 200, f"only {sum(served)} of {len(served)} searches used a sorted index"


def test_values_that_do_not_parse_sort_last_like_missing_ones(served: list[bool]) -> None:
    """A stored close date the converter refuses has no search key: it matches no range and sorts with the
    records that have none, in store order, ascending and descending."""
    rng = random.Random(99)
    state = _state(rng, 120)
    store = state.stores["deals"]
    for obj in list(store.objects.values())[::7]:
        obj.properties["closedate"] = "not a date"
        obj.properties["amount"] = "nan" if obj.num % 2 else "twelve"
    store.new_epoch()
    now = epoch_ms(START)
    for _ in range(200):
        body = _body(rng, store)
        assert _answer(run_search(store, body, 0, now)) == _answer(scan_search(store, body, 0, now)), body
    assert any(served)


def test_many_writes_rebuild_the_index_and_still_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "_REBUILD_AFTER", 5)
    rng = random.Random(7)
    state = _state(rng, 200)
    store = state.stores["deals"]
    now = epoch_ms(START)
    bodies = [_body(rng, store) for _ in range(6)]
    for _ in range(150):
        body = rng.choice(bodies)
        assert _answer(run_search(store, body, 0, now)) == _answer(scan_search(store, body, 0, now)), body
        for _ in range(rng.choice([0, 2, 8, 150])):
            _write(rng, state)


def test_a_lagging_search_is_not_served_from_the_index(served: list[bool]) -> None:
    rng = random.Random(3)
    state = _state(rng, 50)
    store = state.stores["deals"]
    body = {"sorts": [{"propertyName": "closedate", "direction": "ASCENDING"}], "limit": 20}
    now = epoch_ms(START)
    assert _answer(run_search(store, body, 30_000, now)) == _answer(scan_search(store, body, 30_000, now))
    assert served == []


def _closed_sweep(state: HubSpotState, since: datetime, until: datetime) -> Iterator[list[Record]]:
    """A closed-deal sweep sorted by close date (the Sweeper with close dates in place of modified dates, as
    the outcome report's read first did; it now keys on ids), answered by run_search in process: the
    hardest shape for the index, with whole pages tied on one date."""
    store = state.stores["deals"]
    closed = {"propertyName": "hs_is_closed", "operator": "EQ", "value": "true"}

    def search(window: Window) -> Result:
        body = search_body(window, [closed], ["hs_object_id", "closedate"], 200, "closedate")
        page = run_search(store, body, 0, epoch_ms(START))
        records = tuple(Record(obj.id, {"closedate": props.get("closedate")}) for obj, props, _ in page.rows)
        return Result(records, page.next_after is not None)

    def closed_on(record: Record) -> datetime | None:
        raw = record.properties.get("closedate")
        return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None

    yield from Sweeper(search, 200, closed_on).sweep(since, until)


def test_the_closed_deal_sweep_does_not_filter_the_whole_store_per_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """4,000 closed deals over 20 close dates (200 a date: whole pages tie, so the sweep also pages one date
    by id) and 1,000 open ones: the filters run about once per record for the whole sweep (the index), plus
    the records of a tied date per tie page, not once per record per page as a scan would."""
    rng = random.Random(11)
    state = HubSpotState(SandboxClock(START))
    for i in range(5_000):
        closed = i % 5 != 0
        day = START.replace(hour=0) - DAY * (i % 20)
        state.create(
            "deals",
            {
                "dealname": f"deal {i}",
                "dealstage": rng.choice(["closedwon", "closedlost"]) if closed else "contractsent",
                "closedate": day.isoformat(),
            },
        )
    calls = 0
    compile_search = search_module.compile_search

    def counting(store: ObjectStore, body: Any) -> Predicate:
        predicate = compile_search(store, body)

        def counted(props: Any, modstamp: int, num: int) -> bool:
            nonlocal calls
            calls += 1
            return predicate(props, modstamp, num)

        return counted

    monkeypatch.setattr(search_module, "compile_search", counting)
    seen: list[str] = []
    for records in _closed_sweep(state, START - DAY * 30, START):
        seen.extend(r.id for r in records)
    store = state.stores["deals"]
    expected = {obj.id for obj in store.objects.values() if obj.properties["hs_is_closed"] == "true"}
    assert len(seen) == len(set(seen)) and set(seen) == expected
    pages = len(seen) // 200
    assert pages >= 20
    assert calls <= len(store.objects) + 2 * len(seen), f"{calls} filter calls for {pages} pages"


@pytest.mark.parametrize("seed", range(4))
def test_an_id_keyset_walk_answers_what_the_scan_answers(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The outcome report's closed-deal read keys on ids: `hs_object_id GT last`, sorted by id (or not),
    with fixed filters beside it (closed, a close-date window). The id index answers it exactly as the scan
    does, NOT_IN and upper bounds included, with writes between pages; and it served every page."""
    rng = random.Random(seed)
    state = _state(rng, 300)
    store = state.stores["deals"]
    id_keyed = search_module._id_keyed_search
    served: list[bool] = []

    def counting(*args: Any, **kwargs: Any) -> SearchPage | None:
        page = id_keyed(*args, **kwargs)
        served.append(page is not None)
        return page

    monkeypatch.setattr(search_module, "_id_keyed_search", counting)
    nums = sorted(o.num for o in store.objects.values())
    for _ in range(120):
        filters: list[dict[str, Any]] = [
            {"propertyName": "dealstage", "operator": "IN", "values": list(STAGES[2:])}
        ]
        if rng.random() < 0.7:
            filters.append({"propertyName": "closedate", "operator": "GTE", "value": _ms(DATES[5])})
        op = rng.choice(["GT", "GTE", "LT", "LTE"])
        filters.append({"propertyName": "hs_object_id", "operator": op, "value": str(rng.choice(nums))})
        if rng.random() < 0.3:
            values = [str(n) for n in rng.sample(nums, 3)]
            filters.append({"propertyName": "hs_object_id", "operator": "NOT_IN", "values": values})
        body: dict[str, Any] = {"filterGroups": [{"filters": filters}], "limit": rng.choice([5, 50, 200])}
        if rng.random() < 0.6:
            body["sorts"] = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        body["after"] = str(rng.choice([0, 0, 3, 40]))
        assert _answer(run_search(store, body, 0, epoch_ms(START))) == _answer(
            scan_search(store, body, 0, epoch_ms(START))
        ), body
        if rng.random() < 0.2:
            _write(rng, state)
            nums = sorted(o.num for o in store.objects.values())
    assert served and all(served)
